"""The local REST gateway in front of a real bigram service: CONTRACT.md's baseline rows and every error case."""
import json

import httpx
import pytest

from tests.harness import start_gateway, start_service


def post(gateway, path, body=None, **kwargs):
    return httpx.post(f"{gateway.url}{path}", json=body, timeout=10, **kwargs)


@pytest.mark.parametrize("path", ["/generate", "/generate_text"])
def test_generate_paths(gateway, path):
    response = post(gateway, path, {"start_word": "the", "length": 5, "seed": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
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


@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "must be an object"),
    (b'{"start_word": "the", "length": "many"}', "length"),
    (b'{"start_word": 5}', "start_word"),
    (b'{"start_word": "the", "length": 99999999999}', "length"),
])
def test_malformed_bodies_are_400(gateway, content, fragment):
    response = httpx.post(f"{gateway.url}/generate", content=content, timeout=10)
    assert response.status_code == 400
    assert response.json()["code"] == 3 and fragment in response.json()["message"]


def test_unknown_path_and_method_are_404(gateway):
    for method, path in [("GET", "/nope"), ("GET", "/generate"), ("POST", "/generate/extra")]:
        response = httpx.request(method, f"{gateway.url}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json()["code"] == 5 and path in response.json()["message"]


def test_unknown_query_parameter_is_400(gateway):
    response = httpx.post(f"{gateway.url}/generate?verbose=1", json={"start_word": "the"}, timeout=10)
    assert response.status_code == 400 and "verbose" in response.json()["message"]


def test_oversized_body_is_413(gateway):
    response = httpx.post(f"{gateway.url}/generate", content=b'{"start_word": "' + b"a" * 2_000_000 + b'"}',
                          timeout=10)
    assert response.status_code == 413 and response.json()["code"] == 8


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
        with start_gateway({"BASELINE_ADDR": service.address}) as gateway:
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

    from tests.harness import ROOT

    files = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "gen" / "descriptor.pb").read_bytes())
    expected = set()
    for file in files.file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in [rule, *rule.additional_bindings]:
                    kind = binding.WhichOneof("pattern")
                    if kind:
                        expected.add((kind, getattr(binding, kind)))
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    listed = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert expected == listed
    assert len(expected) >= 12
    request = document["components"]["schemas"]["textgen.v1.BigramGenerateRequest"]
    assert "1..1000" in request["properties"]["length"]["description"]


def test_swagger_ui_is_served_offline(gateway):
    page = httpx.get(f"{gateway.url}/docs", timeout=10)
    assert page.status_code == 200 and "/openapi.json" in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert httpx.get(f"{gateway.url}/docs/static/{asset}", timeout=10).status_code == 200
