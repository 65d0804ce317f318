"""Envoy, as make run configures it, in front of a real bigram service: the contract's bigram rows, every error case,
and the edge (body cap, gRPC-only methods, query binding, docs)."""
import json

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from textgen.v1 import baseline_pb2, baseline_pb2_grpc, llm_pb2, llm_pb2_grpc

from devtools.processes import start_gateway, start_service
from gateway.local_replies import NOT_ROUTED_FOR_GRPC
from textgen.paths import DESCRIPTOR_SET


def post(gateway, path, body=None, **kwargs):
    return httpx.post(f"{gateway.url}{path}", json=body, timeout=10, **kwargs)


@pytest.mark.parametrize("path", ["/generate", "/generate_text"])
def test_generate_paths(gateway, path):
    response = post(gateway, path, {"start_word": "the", "length": 5, "seed": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json" and response.headers["server"] == "envoy"
    body = response.json()
    assert body["model"] == "bigram" and "warning" not in body
    assert body["generated_text"].startswith("the ") and len(body["generated_text"].split()) <= 5


def test_defaults_and_seed_as_string(gateway):
    first = post(gateway, "/generate", {"start_word": "sea", "seed": "9"}).json()
    second = post(gateway, "/generate", {"start_word": "sea", "seed": 9}).json()
    assert first == second


def test_unknown_start_word_warns(gateway):
    body = post(gateway, "/generate", {"start_word": "Zanzibar"}).json()
    assert body == {"generated_text": "zanzibar", "model": "bigram",
                    "warning": "start_word 'Zanzibar' is not in the vocabulary; returned it alone"}


def test_unknown_body_fields_are_ignored_like_envoy(gateway):
    assert post(gateway, "/generate", {"start_word": "the", "colour": "blue"}).status_code == 200


@pytest.mark.parametrize("body, field, message", [
    ({"length": 5}, "start_word", "start_word is required"),
    ({"start_word": "the", "length": 0}, "length", "length must be between 1 and 1000 (got 0)"),
    ({"start_word": "the", "length": 5000}, "length", "length must be between 1 and 1000 (got 5000)"),
    ({"start_word": "y" * 101}, "start_word", "at most 100 characters"),
])
def test_validation_errors_are_400_with_the_field_named(gateway, body, field, message):
    response = post(gateway, "/generate", body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 3 and message in error["message"]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error["details"][0]["field_violations"][0]["field"] == field


# Envoy's transcoder words these messages; what they name is the contract.
@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "Expected : between key:value pair"),
    (b"[1, 2]", "Root element must be a message"),
    (b'{"start_word": "the", "length": "many"}', 'length: invalid value "many" for type TYPE_INT32'),
    (b'{"start_word": 5}', "start_word"),
    (b'{"start_word": "the", "length": 99999999999}', "length: invalid value 99999999999"),
])
def test_malformed_bodies_are_400(gateway, content, fragment):
    response = httpx.post(f"{gateway.url}/generate", content=content, timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == 3 and fragment in response.json()["message"]


def test_unknown_path_and_method_are_404(gateway):
    for method, path in [("GET", "/nope"), ("GET", "/generate"), ("POST", "/generate/extra")]:
        response = httpx.request(method, f"{gateway.url}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json()["code"] == 5 and path in response.json()["message"]


def test_unknown_query_parameter_is_400(gateway):
    response = httpx.post(f"{gateway.url}/generate?verbose=1", json={"start_word": "the"}, timeout=10)
    assert response.status_code == 400 and '"verbose"' in response.json()["message"]


def test_a_query_parameter_naming_a_field_is_bound_and_a_collision_with_the_body_refused(gateway):
    bound = post(gateway, "/generate?length=3&seed=1", {"start_word": "the"})
    assert bound.status_code == 200 and len(bound.json()["generated_text"].split()) <= 3
    collision = post(gateway, "/generate?length=3", {"start_word": "the", "length": 4})
    assert collision.status_code == 400
    assert collision.json()["code"] == 3 and "conflicting" in collision.json()["message"]


def test_oversized_body_is_413_even_when_chunked(gateway):
    body = b'{"start_word": "' + b"a" * 2 * 1024 * 1024 + b'"}'
    whole = httpx.post(f"{gateway.url}/generate", content=body, timeout=10)
    chunked = httpx.post(f"{gateway.url}/generate", timeout=10,
                         content=(body[i:i + 4096] for i in range(0, len(body), 4096)))  # no content-length
    for response in (whole, chunked):
        assert response.status_code == 413 and response.json() == {"code": 8, "message": "Payload Too Large"}


def test_grpc_only_methods_reflection_and_health_are_refused_at_the_edge(gateway, baseline):
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        allowed = baseline_pb2_grpc.BigramServiceStub(channel).Generate(
            baseline_pb2.BigramGenerateRequest(start_word="the", length=3), timeout=10)
        assert allowed.model == "bigram"  # a REST method may be called over gRPC through Envoy too
        refused = [
            lambda: llm_pb2_grpc.LlmServiceStub(channel).ReloadAdapters(llm_pb2.ReloadAdaptersRequest(), timeout=10),
            lambda: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10),
            lambda: channel.unary_unary("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")(b"", timeout=10),
        ]
        for call in refused:
            with pytest.raises(grpc.RpcError) as error:
                call()
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert error.value.details() == NOT_ROUTED_FOR_GRPC
    # The service itself still answers them.
    assert health_pb2.HealthCheckResponse.SERVING == health_pb2_grpc.HealthStub(
        grpc.insecure_channel(baseline.address)).Check(health_pb2.HealthCheckRequest(), timeout=10).status


def test_no_500_for_odd_requests(gateway):
    odd = [b"", b"null", b"{}", b'{"start_word": null}', b'{"seed": "abc", "start_word": "the"}',
           b'{"start_word": "\\u0000"}', "{\"start_word\": \"\u00e9t\u00e9\"}".encode(), b"\xff\xfe"]
    for content in odd:
        response = httpx.post(f"{gateway.url}/generate", content=content, timeout=10)
        assert response.status_code < 500, (content, response.text)
        json.loads(response.text)


def test_backend_down_is_503_and_recovers(corpus_file, tmp_path):
    env = {"CORPUS": str(corpus_file), "MODELS_DIR": str(tmp_path)}
    with start_service("services.baseline", env, "BASELINE_PORT") as service:
        port = service.port
        with start_gateway(baseline=service.address) as gateway:
            assert post(gateway, "/generate", {"start_word": "the"}).status_code == 200
            service.stop()
            down = post(gateway, "/generate", {"start_word": "the"})
            assert down.status_code == 503 and down.json()["code"] == 14
            with start_service("services.baseline", env, "BASELINE_PORT", port=port):
                ok = _poll(lambda: post(gateway, "/generate", {"start_word": "the"}).status_code == 200)
                assert ok, "the gateway did not reconnect to the restarted backend"


def _poll(check, seconds=10.0):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_openapi_lists_every_annotated_path(gateway):
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    expected = set()
    for file in files.file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in [rule, *rule.additional_bindings]:
                    kind = binding.WhichOneof("pattern")
                    if kind:
                        expected.add((kind, getattr(binding, kind)))
    response = httpx.get(f"{gateway.url}/openapi.json", timeout=10)
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    listed = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert expected == listed
    assert len(expected) >= 12
    schemas = document["components"]["schemas"]
    request = schemas["textgen.v1.BigramGenerateRequest"]
    assert "1..1000" in request["properties"]["length"]["description"]
    assert request["required"] == ["start_word"] and schemas["textgen.v1.RnnGenerateRequest"]["required"]
    stream = document["paths"]["/generate_with_llm/stream"]["post"]["responses"]["200"]
    assert list(stream["content"]) == ["application/json"] and "one JSON object of this schema per line" in stream["description"]


def test_swagger_ui_is_served_offline(gateway):
    page = httpx.get(f"{gateway.url}/docs", timeout=10)
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert page.headers["content-type"].startswith("text/html")
    for asset, kind in (("swagger-ui-bundle.js", "application/javascript"), ("swagger-ui.css", "text/css")):
        reply = httpx.get(f"{gateway.url}/docs/static/{asset}", timeout=10)
        assert reply.status_code == 200 and reply.headers["content-type"] == kind and len(reply.content) > 10_000
    assert httpx.post(f"{gateway.url}/docs", timeout=10).status_code == 404  # read-only
