"""The LSTM service over gRPC and through the REST gateway, with a model trained by the real CLI."""
import json
import subprocess
import sys

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from textgen.v1 import rnn_pb2, rnn_pb2_grpc

from devtools.processes import base_env, health_status, start_gateway, start_service
from textgen.paths import ROOT, SHIPPED_CORPUS

TRAIN_HINT = ("make rnn-model", "python -m services.rnn.train")


def run_train_cli(corpus, models_dir, *extra):
    return subprocess.run(
        [sys.executable, "-m", "services.rnn.train", "--corpus", str(corpus), "--chapters", "",
         "--models-dir", str(models_dir), "--epochs", "2", "--no-progress", *extra],
        cwd=ROOT, env=base_env({}), capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("rnn-corpus") / "harbour-start.txt"
    path.write_text(" ".join(SHIPPED_CORPUS.read_text(encoding="utf-8").split()[:3000]))
    return path


@pytest.fixture(scope="module")
def models_dir(corpus, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rnn-models")
    run_train_cli(corpus, directory)
    return directory


@pytest.fixture(scope="module")
def rnn(models_dir):
    with start_service("services.rnn", {"MODELS_DIR": str(models_dir)}, "RNN_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def stub(rnn):
    with grpc.insecure_channel(rnn.address) as channel:
        yield rnn_pb2_grpc.RnnServiceStub(channel)


@pytest.fixture(scope="module")
def gateway(rnn):
    with start_gateway(rnn=rnn.address) as process:
        yield process


def generate(stub, **fields):
    return stub.Generate(rnn_pb2.RnnGenerateRequest(**fields), timeout=10)


def test_cli_writes_weights_vocabulary_and_metadata(models_dir, corpus):
    files = sorted(p.name for p in (models_dir / "rnn").iterdir())
    assert files == ["metadata.json", "model.pt", "vocab.json"]
    assert [p.name for p in models_dir.iterdir()] == ["rnn"]  # no staging folder left behind
    meta = json.loads((models_dir / "rnn" / "metadata.json").read_text())
    import hashlib
    assert meta["corpus_sha256"] == hashlib.sha256(corpus.read_text().encode()).hexdigest()
    assert meta["corpus_source"] == str(corpus) and meta["corpus_warning"] is None
    assert meta["epochs_run"] == 2 and meta["seq_len"] == 30
    assert meta["vocab_size"] == len(json.loads((models_dir / "rnn" / "vocab.json").read_text()))
    assert 1 < meta["validation_perplexity"] < meta["untrained_validation_perplexity"]
    assert meta["final_train_loss"] > 0


def test_cli_if_missing_keeps_an_existing_model(models_dir, corpus):
    before = (models_dir / "rnn" / "metadata.json").read_text()
    result = run_train_cli(corpus, models_dir, "--if-missing")
    assert "already at" in result.stdout
    assert (models_dir / "rnn" / "metadata.json").read_text() == before


def test_cli_rejects_bad_arguments(tmp_path):
    result = subprocess.run([sys.executable, "-m", "services.rnn.train", "--epochs", "0", "--models-dir",
                             str(tmp_path)], cwd=ROOT, env=base_env({}), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--epochs is too small" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_exactly_length_new_words_after_the_start_text(stub):
    response = generate(stub, start_word="The old  harbour", length=25, seed=1)
    assert response.model == "lstm" and not response.HasField("warning")
    words = response.generated_text.split()
    assert words[:3] == ["The", "old", "harbour"] and len(words) == 3 + 25
    assert len(generate(stub, start_word="sea").generated_text.split()) == 1 + 15
    assert len(generate(stub, start_word="sea", length=1000, temperature=5).generated_text.split()) == 1001
    assert not {"<unk>", "<pad>"} & set(words)


def test_seed_reproduces_and_temperature_changes_the_sample(stub):
    first = generate(stub, start_word="the ship", length=40, seed=7, temperature=1.5)
    assert generate(stub, start_word="the ship", length=40, seed=7, temperature=1.5) == first
    assert generate(stub, start_word="the ship", length=40, seed=8, temperature=1.5) != first
    assert generate(stub, start_word="the ship", length=40, seed=7, temperature=0.2) != first
    unseeded = {generate(stub, start_word="the ship", length=40).generated_text for _ in range(3)}
    assert len(unseeded) > 1


def test_unknown_words_are_read_as_unk_and_reported(stub):
    response = generate(stub, start_word="Zanzibar quokka the", length=5, seed=1)
    assert response.warning == "not in the vocabulary, read as <unk>: zanzibar, quokka"
    assert len(response.generated_text.split()) == 3 + 5


@pytest.mark.parametrize("fields, field, words", [
    ({"start_word": ""}, "start_word", "required"),
    ({"start_word": "   "}, "start_word", "required"),
    ({"start_word": "x" * 101}, "start_word", "at most 100"),
    ({"start_word": "?!"}, "start_word", "at least one word"),
    ({"start_word": "the", "length": 0}, "length", "between 1 and 1000 (got 0)"),
    ({"start_word": "the", "length": 1001}, "length", "between 1 and 1000 (got 1001)"),
    ({"start_word": "the", "temperature": 0}, "temperature", "greater than 0 and at most 5.0"),
    ({"start_word": "the", "temperature": -1}, "temperature", "greater than 0 and at most 5.0"),
    ({"start_word": "the", "temperature": 5.01}, "temperature", "greater than 0 and at most 5.0"),
    ({"start_word": "the", "temperature": float("nan")}, "temperature", "greater than 0 and at most 5.0"),
])
def test_bad_input_is_invalid_argument_naming_the_field(stub, fields, field, words):
    with pytest.raises(grpc.RpcError) as raised:
        generate(stub, **fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in raised.value.details()
    bad_request = error_details_pb2.BadRequest()
    assert rpc_status.from_call(raised.value).details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [field]


def test_health_is_serving_once_the_model_is_loaded(rnn):
    assert health_status(rnn.address, "textgen.v1.RnnService") == health_pb2.HealthCheckResponse.SERVING
    assert '"LSTM model loaded"' in rnn.logs()


def test_rest_generate_with_rnn(gateway):
    response = httpx.post(f"{gateway.url}/generate_with_rnn",
                          json={"start_word": "the sea", "length": 12, "temperature": 0.8, "seed": "3"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"generated_text", "model"} and body["model"] == "lstm"
    assert body["generated_text"].startswith("the sea ") and len(body["generated_text"].split()) == 2 + 12
    again = httpx.post(f"{gateway.url}/generate_with_rnn",
                       json={"start_word": "the sea", "length": 12, "temperature": 0.8, "seed": 3}, timeout=10)
    assert again.json() == body
    warned = httpx.post(f"{gateway.url}/generate_with_rnn", json={"start_word": "quokka"}, timeout=10).json()
    assert "quokka" in warned["warning"] and len(warned["generated_text"].split()) == 16


@pytest.mark.parametrize("body, field", [
    ({"length": 5}, "start_word"),
    ({"start_word": "the", "length": 0}, "length"),
    ({"start_word": "the", "temperature": 6}, "temperature"),
])
def test_rest_bad_input_is_400_naming_the_field(gateway, body, field):
    response = httpx.post(f"{gateway.url}/generate_with_rnn", json=body, timeout=10)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 3 and field in error["message"]
    assert error["details"][0]["field_violations"][0]["field"] == field


def test_missing_model_is_unavailable_with_the_training_hint_then_loads_once_trained(corpus, tmp_path):
    with start_service("services.rnn", {"MODELS_DIR": str(tmp_path)}, "RNN_PORT", wait_serving=False) as rnn, \
            start_gateway(rnn=rnn.address) as gateway:
        assert health_status(rnn.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        with grpc.insecure_channel(rnn.address) as channel:
            stub = rnn_pb2_grpc.RnnServiceStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                generate(stub, start_word="the")
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert all(hint in raised.value.details() for hint in TRAIN_HINT)
            with pytest.raises(grpc.RpcError) as raised:  # bad input is still named first
                generate(stub, start_word="the", length=0)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            response = httpx.post(f"{gateway.url}/generate_with_rnn", json={"start_word": "the"}, timeout=10)
            assert response.status_code == 503
            assert response.json()["code"] == 14 and all(h in response.json()["message"] for h in TRAIN_HINT)

            run_train_cli(corpus, tmp_path, "--epochs", "1")
            assert len(generate(stub, start_word="the", length=4).generated_text.split()) == 5
            assert health_status(rnn.address) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("variable, value, message", [
    ("RNN_TORCH_THREADS", "0", "RNN_TORCH_THREADS must be at least 1 (got 0)"),
    ("RNN_PORT", "not-a-port", "RNN_PORT='not-a-port' is not a valid int"),
])
def test_bad_configuration_exits_with_a_message(variable, value, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "services.rnn"], cwd=ROOT, capture_output=True, text=True,
                            env=base_env({"MODELS_DIR": str(tmp_path), variable: value}), timeout=60)
    assert result.returncode != 0 and message in result.stderr
