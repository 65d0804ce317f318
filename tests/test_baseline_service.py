"""The bigram service over gRPC: semantics, validation, health, reflection, metrics, shutdown."""
import signal

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from textgen.v1 import baseline_pb2, baseline_pb2_grpc

from devtools.processes import health_status, start_service


@pytest.fixture(scope="module")
def stub(baseline):
    with grpc.insecure_channel(baseline.address) as channel:
        yield baseline_pb2_grpc.BigramServiceStub(channel)


def generate(stub, **fields):
    return stub.Generate(baseline_pb2.BigramGenerateRequest(**fields), timeout=5)


def test_length_default_and_seed(stub):
    response = generate(stub, start_word="the", seed=42)
    assert response.model == "bigram"
    assert len(response.generated_text.split()) == 15 or response.generated_text.split()[-1] in {"sea", "deck"}
    assert generate(stub, start_word="the", seed=42).generated_text == response.generated_text
    assert not response.HasField("warning")


def test_every_generated_transition_is_in_the_corpus(stub, corpus_file):
    from services.common.words import tokenize

    words = tokenize(corpus_file.read_text())
    transitions = set(zip(words, words[1:]))
    generated = generate(stub, start_word="The", length=40, seed=3).generated_text.split()
    assert generated[0] == "the"
    assert all(pair in transitions for pair in zip(generated, generated[1:]))


def test_unknown_start_word(stub):
    response = generate(stub, start_word="Zanzibar", length=10)
    assert response.generated_text == "zanzibar"
    assert "not in the vocabulary" in response.warning


@pytest.mark.parametrize("fields, field, words", [
    ({"start_word": "", "length": 5}, "start_word", "required"),
    ({"start_word": "   "}, "start_word", "required"),
    ({"start_word": "x" * 101}, "start_word", "at most 100"),
    ({"start_word": "two words"}, "start_word", "single word"),
    ({"start_word": "the", "length": 0}, "length", "between 1 and 1000"),
    ({"start_word": "the", "length": 1001}, "length", "between 1 and 1000"),
])
def test_bad_input_is_invalid_argument_with_the_field_named(stub, fields, field, words):
    with pytest.raises(grpc.RpcError) as raised:
        generate(stub, **fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in raised.value.details()
    status = rpc_status.from_call(raised.value)
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [field]


def test_health_reports_serving(baseline):
    assert health_status(baseline.address) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(baseline.address, "textgen.v1.BigramService") == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(baseline):
    with grpc.insecure_channel(baseline.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in next(responses).list_services_response.service}
    assert {"textgen.v1.BigramService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_metrics_count_requests_by_method_and_code(baseline, stub):
    generate(stub, start_word="the")
    with pytest.raises(grpc.RpcError):
        generate(stub, start_word="")
    port = next(line for line in baseline.logs().splitlines() if '"listening"' in line)
    metrics_port = __import__("json").loads(port)["metrics_port"]
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="/textgen.v1.BigramService/Generate"}' in text
    assert 'grpc_code="INVALID_ARGUMENT",grpc_method="/textgen.v1.BigramService/Generate"' in text
    assert "grpc_server_handling_seconds_bucket" in text


def test_sigterm_stops_gracefully(corpus_file, tmp_path):
    with start_service("services.baseline", {"CORPUS": str(corpus_file), "MODELS_DIR": str(tmp_path)},
                       "BASELINE_PORT") as service:
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(15) == 0
        assert '"stopped"' in service.logs()


def test_bad_configuration_exits_with_a_message(corpus_file, tmp_path):
    import subprocess
    import sys

    from devtools.processes import base_env
    from textgen.paths import ROOT

    result = subprocess.run([sys.executable, "-m", "services.baseline"], cwd=ROOT, capture_output=True, text=True,
                            env=base_env({"BASELINE_PORT": "not-a-port"}), timeout=30)
    assert result.returncode != 0
    assert "BASELINE_PORT='not-a-port' is not a valid int" in result.stderr
