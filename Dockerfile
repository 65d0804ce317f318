# Every image of the system, one target each, built from the repository root (docker compose does this):
#   docker build --target baseline -t textgen-baseline .      (also: rnn, llm, trainer, envoy)
# The `contracts` stage generates the stubs and the descriptor set once; every image copies what it needs from it.
# Each service image installs only its own pinned dependency set (requirements/<service>.txt).

FROM python:3.11-slim AS contracts
WORKDIR /src
COPY requirements/gateway.txt requirements/gateway.txt
RUN pip install --no-cache-dir -r requirements/gateway.txt grpcio-tools==1.85.1
COPY protos protos
COPY textgen/__init__.py textgen/endpoints.py textgen/paths.py textgen/openai_error_body.py textgen/
RUN PYTHONPATH=/src python protos/build.py
COPY gateway gateway
# The rate limits' token buckets (gateway/rate_limits.py): compose passes the host's settings on; unset, the defaults.
ARG GATEWAY_LLM_RATE
ARG GATEWAY_LLM_BURST
ARG GATEWAY_TRAIN_RATE
ARG GATEWAY_TRAIN_BURST
RUN python -m gateway.render compose --out /envoy \
    && mkdir /envoy/swagger-ui \
    && cp "$(python -c 'import swagger_ui_bundle; print(swagger_ui_bundle.swagger_ui_path)')"/swagger-ui* /envoy/swagger-ui/

# What every service image starts from. `python -m services.<name>` runs from /app, so no import path is set.
# The services run as an unprivileged user (uid 10001) that may write only /app/models, /app/hf-cache and /tmp;
# compose and Kubernetes also make the root file system read-only. They listen on every interface of the container
# (make run keeps them on loopback): the container network is private, and NetworkPolicies say who may call whom.
FROM python:3.11-slim AS service
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MODELS_DIR=/app/models HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib \
    BIND_ADDRESS=0.0.0.0
RUN useradd --uid 10001 --no-create-home --home-dir /tmp textgen \
    && mkdir -p /app/models /app/hf-cache && chown textgen:textgen /app/models /app/hf-cache
VOLUME ["/app/models"]

FROM service AS baseline
COPY requirements/base.txt requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY --from=contracts /src/textgen textgen
COPY services/__init__.py services/
COPY services/common services/common
COPY services/baseline services/baseline
COPY data/corpus data/corpus
USER textgen
EXPOSE 50051
CMD ["python", "-m", "services.baseline"]

# torch==2.13.0 comes from pip's default index unless TORCH_INDEX names an extra one, from the builder's environment
# (compose passes the host's TORCH_INDEX on). The default index's Linux wheel of torch is the CUDA build (it brings
# the CUDA runtime as nvidia-* wheels): the GPU variant of the llm and trainer images (compose's gpu profile). For
# the smaller CPU images, point TORCH_INDEX at an index of torch's CPU wheels. The host needs the NVIDIA driver and the
# NVIDIA container toolkit; LLM_DEVICE / TRAINER_DEVICE stay `auto`: CUDA when the container is given a GPU.
FROM service AS rnn
ARG TORCH_INDEX=
COPY requirements/base.txt requirements/torch.txt requirements/rnn.txt requirements/
RUN pip install --no-cache-dir ${TORCH_INDEX:+--extra-index-url ${TORCH_INDEX}} -r requirements/rnn.txt
COPY --from=contracts /src/textgen textgen
COPY services/__init__.py services/
COPY services/common services/common
COPY services/rnn services/rnn
COPY data/corpus data/corpus
USER textgen
EXPOSE 50052
CMD ["python", "-m", "services.rnn"]

# /app/hf-cache (HF_HOME) keeps downloaded Hub models between runs.
FROM service AS llm
ARG TORCH_INDEX=
ENV HF_HOME=/app/hf-cache
COPY requirements/base.txt requirements/torch.txt requirements/llm.txt requirements/
RUN pip install --no-cache-dir ${TORCH_INDEX:+--extra-index-url ${TORCH_INDEX}} -r requirements/llm.txt
COPY --from=contracts /src/textgen textgen
COPY services/__init__.py services/
COPY services/common services/common
COPY services/llm services/llm
COPY data/corpus data/corpus
USER textgen
EXPOSE 50053
CMD ["python", "-m", "services.llm"]

FROM service AS trainer
ARG TORCH_INDEX=
# Every deployment of the trainer image needs the trainer token: unset or empty, the trainer will not start.
ENV HF_HOME=/app/hf-cache MPLBACKEND=Agg TRAINER_REQUIRE_AUTH=1
COPY requirements/base.txt requirements/torch.txt requirements/llm.txt requirements/trainer.txt requirements/
RUN pip install --no-cache-dir ${TORCH_INDEX:+--extra-index-url ${TORCH_INDEX}} -r requirements/trainer.txt
COPY --from=contracts /src/textgen textgen
COPY services/__init__.py services/
COPY services/common services/common
COPY services/trainer services/trainer
COPY data/corpus data/corpus
COPY data/squad_sample data/squad_sample
COPY data/squad_train_slice data/squad_train_slice
USER textgen
EXPOSE 50054
CMD ["python", "-m", "services.trainer"]

# The REST gateway: its configuration rendered for compose from gateway/envoy.template.yaml, as make run's is.
FROM envoyproxy/envoy:v1.40-latest AS envoy
COPY --from=contracts /envoy /etc/envoy
EXPOSE 8080
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
