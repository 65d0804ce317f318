"""HTTPS at the edge with API keys, through a real Envoy: the `openai` client with its api_key, and the `textgen`
command over gRPC with TEXTGEN_CA_FILE, over TLS with a CA made for the run, against the llm service on the tiny
random GPT-2. Then how compose and Kubernetes complete their
configuration where Envoy starts (gateway/edge.py run as a script): it refuses to start without keys, and what it
writes passes `envoy --mode validate`."""
import json
import os
import pathlib
import ssl
import subprocess
import sys

import httpx
import openai
import pytest

from devtools.certificates import make_certificates
from devtools.models import RANDOM_GPT2, random_models_dir
from devtools.processes import base_env, start_gateway, start_service
from gateway import edge, render
from gateway.targets import compose_target
from tests.rendered_envoy import bootstrap
from textgen.client.api import CA_FILE_VARIABLE
from textgen.paths import ENVOY, ROOT

KEYS = [{"name": "app", "key": "app-key-0123456789ab", "scopes": ["generate"]}]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, certificates):
    models_dir = random_models_dir(tmp_path_factory.mktemp("models"))
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as llm, \
            start_gateway(api_keys=KEYS, tls=(str(certificates.cert), str(certificates.key)),
                          llm=llm.address) as process:
        yield process


def test_the_openai_client_with_its_api_key_over_https(gateway, certificates):
    assert gateway.url.startswith("https://")
    with httpx.Client(verify=ssl.create_default_context(cafile=certificates.ca)) as http, \
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEYS[0]["key"], http_client=http,
                          max_retries=0, timeout=60) as client:
        assert [m.id for m in client.models.list()]  # the base model's id
        answer = client.chat.completions.create(model="base", max_tokens=4, temperature=0,
                                                messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content is not None
    with httpx.Client(verify=ssl.create_default_context(cafile=certificates.ca)) as http, \
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong-key-0123456789", http_client=http,
                          max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_https_only_and_only_with_the_ca(gateway):
    with pytest.raises(httpx.ConnectError):  # the certificate is not one the system trusts
        httpx.get(f"{gateway.url}/docs", timeout=10)
    with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP on the TLS port
        httpx.get(f"http://127.0.0.1:{gateway.port}/docs", timeout=10)


def textgen(*args: str, **env: str) -> subprocess.CompletedProcess:
    command = pathlib.Path(sys.executable).parent / "textgen"
    return subprocess.run([str(command), *args], env=base_env(env), capture_output=True, text=True, timeout=120)


def test_the_textgen_command_over_grpc_with_tls_and_the_ca(gateway, certificates):
    """LLM_ADDR=https://...: a TLS channel through Envoy, verified against TEXTGEN_CA_FILE, the key sent along."""
    llm = f"https://127.0.0.1:{gateway.port}"
    ask = ("ask", "--text", "The ship", "--max-new-tokens", "3")
    answered = textgen(*ask, LLM_ADDR=llm, TEXTGEN_API_KEY=KEYS[0]["key"], **{CA_FILE_VARIABLE: str(certificates.ca)})
    assert answered.returncode == 0, answered.stderr
    unknown_ca = textgen(*ask, LLM_ADDR=llm, TEXTGEN_API_KEY=KEYS[0]["key"])
    assert unknown_ca.returncode == 1 and "UNAVAILABLE" in unknown_ca.stderr, unknown_ca.stderr
    no_key = textgen(*ask, LLM_ADDR=llm, **{CA_FILE_VARIABLE: str(certificates.ca)})
    assert no_key.returncode == 1 and "UNAUTHENTICATED" in no_key.stderr, no_key.stderr
    missing = textgen(*ask, LLM_ADDR=llm, **{CA_FILE_VARIABLE: "/no/such/ca.pem"})
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"{CA_FILE_VARIABLE}=/no/such/ca.pem: cannot read the CA certificate" in missing.stderr
    # Plain gRPC to the TLS port fails rather than sending the key in the clear to whatever answers.
    plain = textgen(*ask, LLM_ADDR=f"127.0.0.1:{gateway.port}", TEXTGEN_API_KEY=KEYS[0]["key"])
    assert plain.returncode == 1 and "UNAVAILABLE" in plain.stderr, plain.stderr


@pytest.fixture(scope="module")
def compose_rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("etc-envoy")
    return render.write(compose_target({}), out)


def run_edge(compose_rendered, out, env: dict[str, str]):
    environ = {k: v for k, v in os.environ.items() if k not in (edge.KEYS_VARIABLE, edge.CERT_VARIABLE)}
    return subprocess.run([sys.executable, str(compose_rendered.parent / "edge.py"), "--require-keys",
                           str(compose_rendered), str(out)], capture_output=True, text=True, timeout=60,
                          env={**environ, **env}, cwd="/")


def test_compose_and_kubernetes_refuse_to_start_without_keys(compose_rendered, tmp_path):
    refused = run_edge(compose_rendered, tmp_path / "envoy.json", {})
    assert refused.returncode != 0 and "API_KEYS_FILE is unset" in refused.stderr
    assert not (tmp_path / "envoy.json").exists()
    (tmp_path / "keys.json").write_text(json.dumps([{"name": "a", "key": "short", "scopes": ["read"]}]))
    refused = run_edge(compose_rendered, tmp_path / "envoy.json", {edge.KEYS_VARIABLE: str(tmp_path / "keys.json")})
    assert refused.returncode != 0 and "at least 16" in refused.stderr


def test_where_envoy_starts_the_keys_and_tls_make_a_valid_configuration(compose_rendered, tmp_path, certificates):
    assert not any(k["key"] in compose_rendered.read_text() for k in KEYS)  # nothing secret in an image
    (tmp_path / "keys.json").write_text(json.dumps(KEYS))
    started = run_edge(compose_rendered, tmp_path / "envoy.json", {
        edge.KEYS_VARIABLE: str(tmp_path / "keys.json"), edge.CERT_VARIABLE: str(certificates.cert),
        edge.KEY_VARIABLE: str(certificates.key)})
    assert started.returncode == 0, started.stderr
    assert "API keys: 1" in started.stderr and "https" in started.stderr
    config = json.loads((tmp_path / "envoy.json").read_text())
    bootstrap(config)  # every field is one Envoy knows
    here = tmp_path / "envoy-here.json"  # the image's files are under /etc/envoy; validate against the folder's
    here.write_text(json.dumps(config).replace("/etc/envoy", str(compose_rendered.parent)))
    (compose_rendered.parent / "swagger-ui").mkdir(exist_ok=True)
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        (compose_rendered.parent / "swagger-ui" / name).write_text("")
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(here)], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
