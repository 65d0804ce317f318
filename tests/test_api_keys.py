"""API keys at the edge (gateway/edge.py), through a real Envoy in front of a real bigram service and trainer (the llm
routes go to a closed port: the door is checked before any upstream): on every route no key or a wrong key gets 401,
a key without the route's scope 403, a key with it passes; the public pages stay public; the caller's name reaches
the service's log, the key never does; each key has its own token buckets. TLS with the openai client:
test_api_keys_tls.py."""
import concurrent.futures
import json

import grpc
import httpx
import openai
import pytest

from devtools.processes import free_port, start_gateway, start_service
from gateway import edge
from gateway.http_rules import http_bindings, load_descriptor_set
from gateway.local_replies import NO_KEY, RATE_LIMITED
from gateway.playground_routes import playground_files, playground_path
from gateway.rate_limits import TokenBucket
from tests.route_scopes import SCOPES
from textgen.paths import DESCRIPTOR_SET
from textgen.v1 import common_pb2

KEYS = [{"name": "writer", "key": "writer-key-0123456789", "scopes": ["generate"]},
        {"name": "coach", "key": "coach-key-0123456789", "scopes": ["train"]},
        {"name": "watcher", "key": "watcher-key-0123456789", "scopes": ["read"]},
        {"name": "flood", "key": "flood-key-0123456789", "scopes": ["generate", "train", "read"]}]
BY_NAME = {k["name"]: k for k in KEYS}
WRONG = "not-a-key-0123456789"
PATH_VALUES = {"job_id": "no-such-job", "name": "no-such-adapter", "version": "7", "model": "base",
               "file_id": "file-none", "fine_tuning_job_id": "ftjob-none"}


def bearer(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


def write_keys(folder, keys=KEYS):
    path = folder / "api-keys.json"
    path.write_text(json.dumps(keys))
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return edge.load_keys(write_keys(tmp_path_factory.mktemp("keys")))


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A trainer with no model and no llm service: enough to answer job and adapter reads and cancels."""
    env = {"MODELS_DIR": str(tmp_path_factory.mktemp("models")), "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    with start_service("services.trainer", env, "TRAINER_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def gateway(keys, baseline, trainer):
    with start_gateway(api_keys=keys, baseline=baseline.address, trainer=trainer.address) as process:
        yield process


def routes():
    """Every REST binding once, with its path's variables filled in and the scopes SCOPES says its route takes."""
    for binding in http_bindings(load_descriptor_set(DESCRIPTOR_SET)):
        path = binding.path
        for variable, value in PATH_VALUES.items():
            path = path.replace(f"{{{variable}}}", value)
        body = {"stream": True} if binding.method.server_streaming and path.startswith("/v1/") else {}
        yield binding.http_method, path, body, SCOPES[(binding.http_method, binding.path)]


ROUTES = list(routes())


def test_every_route_s_scopes_are_stated_here():
    bound = {(b.http_method, b.path) for b in http_bindings(load_descriptor_set(DESCRIPTOR_SET))}
    assert bound == set(SCOPES)


def call(gateway, method: str, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    content = json.dumps(body) if method in ("POST", "PUT", "PATCH") else None
    return httpx.request(method, f"{gateway.url}{path}", content=content, headers=headers or {}, timeout=30)


def test_every_route_needs_a_key_with_its_scope(gateway):
    for method, path, body, scopes in ROUTES:
        where = f"{method} {path} {body}"
        for headers in ({}, bearer(WRONG), {"authorization": "Basic d3JpdGVyOmtleQ=="}):
            refused = call(gateway, method, path, body, headers)
            assert refused.status_code == 401, (where, headers, refused.text)
        outside = [k for k in KEYS if not scopes & set(k["scopes"])]
        inside = [k for k in KEYS if scopes & set(k["scopes"]) and k["name"] != "flood"]
        assert outside and inside, where
        for key in outside:
            forbidden = call(gateway, method, path, body, bearer(key["key"]))
            assert forbidden.status_code == 403, (where, key["name"], forbidden.text)
        for key in inside:
            # Past the door the service answers (a 404 for the made-up job, 503 where no llm listens), never the key.
            passed = call(gateway, method, path, body, bearer(key["key"]))
            assert passed.status_code not in (401, 403), (where, key["name"], passed.text)


def test_refusals_say_why_in_the_status_body_and_in_openai_s_error_body_on_v1(gateway):
    missing = call(gateway, "POST", "/generate", {"start_word": "the"})
    assert missing.json() == {"code": 16, "message": NO_KEY}
    forbidden = call(gateway, "POST", "/llm/train_sft", {}, bearer(BY_NAME["writer"]["key"]))
    assert forbidden.json()["code"] == 7 and "one of the scopes" in forbidden.json()["message"]
    assert "train" in forbidden.json()["message"]
    openai_missing = call(gateway, "GET", "/v1/models", {})
    assert openai_missing.json()["error"] == {"message": NO_KEY, "type": "authentication_error", "param": None,
                                              "code": "invalid_api_key"}
    openai_forbidden = call(gateway, "GET", "/v1/models", {}, bearer(BY_NAME["coach"]["key"]))
    assert openai_forbidden.status_code == 403 and openai_forbidden.json()["error"]["type"] == "permission_error"


def test_the_right_key_is_answered_by_the_service(gateway):
    generated = call(gateway, "POST", "/generate", {"start_word": "the", "length": 3}, bearer(BY_NAME["writer"]["key"]))
    assert generated.status_code == 200 and generated.json()["generated_text"].startswith("the")
    for reader in ("watcher", "coach"):
        jobs = call(gateway, "GET", "/llm/jobs", {}, bearer(BY_NAME[reader]["key"]))
        assert jobs.status_code == 200 and "jobs" in jobs.json(), jobs.text
    cancelled = call(gateway, "POST", "/llm/jobs/no-such-job:cancel", {}, bearer(BY_NAME["coach"]["key"]))
    assert cancelled.status_code == 404 and "no-such-job" in cancelled.json()["message"]


def test_the_openai_client_sends_its_api_key_as_a_bearer_token(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=WRONG, max_retries=0, timeout=30) as client:
        with pytest.raises(openai.AuthenticationError, match="API key"):
            client.models.list()
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=BY_NAME["coach"]["key"], max_retries=0) as client:
        with pytest.raises(openai.PermissionDeniedError):
            client.models.list()


def test_the_openapi_document_names_the_scheme_and_each_operation_s_scopes(gateway):
    """Swagger UI at /docs offers Authorize with it; x-scopes are the scopes the operation's route takes."""
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert document["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for method, path, _, scopes in ROUTES:
        template = next(p for p in document["paths"] if all(
            part == given or part.startswith("{") for part, given in zip(p.split("/"), path.split("/")))
            and p.count("/") == path.count("/") and method.lower() in document["paths"][p])
        assert set(document["paths"][template][method.lower()]["x-scopes"]) == scopes, (method, path)


def test_public_pages_need_no_key(gateway):
    for path in ["/docs", "/openapi.json", "/docs/static/swagger-ui.css",
                 *(playground_path(f) for f in playground_files())]:
        assert httpx.get(f"{gateway.url}{path}", timeout=10).status_code == 200, path


def test_the_service_logs_the_caller_s_name_and_never_its_key(gateway, baseline, trainer):
    call(gateway, "POST", "/generate", {"start_word": "sea", "length": 2}, bearer(BY_NAME["writer"]["key"]))
    call(gateway, "GET", "/llm/jobs", {}, bearer(BY_NAME["watcher"]["key"]))
    # A caller cannot name itself: the check writes the header over whatever was sent.
    call(gateway, "GET", "/llm/jobs", {}, {**bearer(BY_NAME["coach"]["key"]), edge.CLIENT_HEADER: "watcher"})
    calls = [json.loads(line) for process in (baseline, trainer) for line in process.logs().splitlines()
             if line.startswith("{") and '"msg": "call"' in line]
    by_method = {(c["client"], c["method"]) for c in calls}
    assert ("writer", "/textgen.v1.BigramService/Generate") in by_method
    assert {("watcher", "/textgen.v1.TrainerService/ListJobs"), ("coach", "/textgen.v1.TrainerService/ListJobs")} \
        <= by_method
    everything = baseline.logs() + trainer.logs()
    assert not any(k["key"] in everything for k in KEYS)


def test_upstream_gets_the_name_and_never_the_key(keys):
    """What a service receives, seen from a gRPC server of our own in the bigram service's place."""
    received = []

    def generate(request: bytes, context: grpc.ServicerContext) -> bytes:
        received.append(list(context.invocation_metadata()))
        return common_pb2.GenerateResponse(generated_text="x", model="bigram").SerializeToString()

    handler = grpc.method_handlers_generic_handler("textgen.v1.BigramService", {
        "Generate": grpc.unary_unary_rpc_method_handler(generate)})
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with start_gateway(api_keys=keys, baseline=f"127.0.0.1:{port}") as gateway:
            key = BY_NAME["writer"]["key"]
            headers = {**bearer(key), edge.CLIENT_HEADER: "flood"}
            assert call(gateway, "POST", "/generate", {"start_word": "a"}, headers).status_code == 200
    finally:
        server.stop(None)
    assert received and [value for name, value in received[-1] if name == edge.CLIENT_HEADER] == ["writer"]
    assert "authorization" not in dict(received[-1]) and key not in json.dumps(received)


def test_without_keys_the_gateway_is_open_and_drops_a_sent_client_name(baseline):
    with start_gateway(baseline=baseline.address) as gateway:
        before = baseline.logs().count('"client": "forged"')
        answered = call(gateway, "POST", "/generate", {"start_word": "the"}, {edge.CLIENT_HEADER: "forged"})
        assert answered.status_code == 200
        assert baseline.logs().count('"client": "forged"') == before


def test_each_key_has_its_own_bucket(keys, trainer, baseline):
    """One client floods the training routes past its bucket; another's calls are answered all along."""
    buckets = {"train": TokenBucket(0.02, 3), "llm": TokenBucket(0.02, 3)}
    with start_gateway(api_keys=keys, trainer=trainer.address, baseline=baseline.address,
                       rate_limits=buckets) as gateway:
        flood = [call(gateway, "POST", "/llm/jobs/j:cancel", {}, bearer(BY_NAME["flood"]["key"])) for _ in range(8)]
        assert [r.status_code for r in flood] == [404] * 3 + [429] * 5
        assert flood[-1].json() == {"code": 8, "message": RATE_LIMITED} and flood[-1].headers["retry-after"] == "50"
        others = [call(gateway, "POST", "/llm/jobs/j:cancel", {}, bearer(BY_NAME["coach"]["key"])) for _ in range(3)]
        assert [r.status_code for r in others] == [404] * 3
        # On /v1 (the llm bucket) the flood is refused in OpenAI's form; no llm listens, so the others get 503.
        v1 = [call(gateway, "GET", "/v1/models", {}, bearer(BY_NAME["flood"]["key"])) for _ in range(4)]
        assert [r.status_code for r in v1] == [503] * 3 + [429]
        assert v1[-1].json()["error"]["code"] == "rate_limit_exceeded"
        assert call(gateway, "GET", "/v1/models", {}, bearer(BY_NAME["writer"]["key"])).status_code == 503


def test_a_bigram_flood_by_one_key_leaves_another_key_s_bigram_calls_answered(keys, baseline):
    buckets = {"small_models": TokenBucket(0.02, 3)}
    generate = {"start_word": "the", "length": 2}
    with start_gateway(api_keys=keys, baseline=baseline.address, rate_limits=buckets) as gateway:
        flood = [call(gateway, "POST", "/generate", generate, bearer(BY_NAME["flood"]["key"])) for _ in range(8)]
        assert [r.status_code for r in flood] == [200] * 3 + [429] * 5
        assert flood[-1].json() == {"code": 8, "message": RATE_LIMITED} and flood[-1].headers["retry-after"] == "50"
        others = [call(gateway, "POST", "/generate", generate, bearer(BY_NAME["writer"]["key"])) for _ in range(3)]
        assert [r.status_code for r in others] == [200] * 3
        assert all(r.json()["generated_text"] for r in others)


@pytest.mark.parametrize("entries, problem", [
    ([], "non-empty list"),
    ([{"name": "a", "key": "k" * 16}], "exactly the fields"),
    ([{"name": "a b", "key": "k" * 16, "scopes": ["read"]}], "name must be"),
    ([{"name": "a", "key": "short", "scopes": ["read"]}], "at least 16"),
    ([{"name": "a", "key": "k" * 16, "scopes": ["admin"]}], "scopes must be"),
    ([{"name": "a", "key": "k" * 16, "scopes": ["read"]}, {"name": "a", "key": "j" * 16, "scopes": ["read"]}],
     "same name"),
    ([{"name": "a", "key": "k" * 16, "scopes": ["read"]}, {"name": "b", "key": "k" * 16, "scopes": ["read"]}],
     "same key"),
])
def test_a_bad_key_file_is_refused_naming_the_problem(tmp_path, entries, problem):
    with pytest.raises(SystemExit, match=problem):
        edge.load_keys(write_keys(tmp_path, entries))
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(SystemExit, match="not JSON"):
        edge.keys_from({edge.KEYS_VARIABLE: str(tmp_path / "broken.json")})
    assert edge.keys_from({edge.KEYS_VARIABLE: ""}) is None
