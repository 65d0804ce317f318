"""What Envoy is rendered for: make run and the tests (local), the Envoy image (compose) or Kubernetes. The targets
differ only in where Envoy listens, where each backend is and where its files are; each sizes the rate limits'
token buckets from the environment it is rendered in (GATEWAY_LLM_RATE, ...: gateway/rate_limits.py) and reads
LLM_ADAPTER_AFFINITY there (gateway/adapter_affinity.py). make run's also takes its API keys and TLS files from there
(API_KEYS_FILE, GATEWAY_TLS_CERT/KEY: gateway/edge.py); compose's and Kubernetes' take them where Envoy starts."""
import dataclasses
import os
import pathlib

import swagger_ui_bundle

from gateway import adapter_affinity, edge
from gateway.rate_limits import DEFAULT_BUCKETS, TokenBucket, buckets_from
from textgen import uploads
from textgen.endpoints import ENDPOINTS, GATEWAY_ADMIN_PORT, GATEWAY_PORT, bind_address
from textgen.paths import DESCRIPTOR_SET, GENERATED

RENDERED = GENERATED / "gateway"  # make run's and the tests' Envoy files
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Target:
    """What Envoy is rendered for (make run and the tests, compose or Kubernetes): where it listens, where each
    backend is, and where its files are."""

    endpoints: dict[str, list[str]]  # cluster name -> ["host:port", ...]
    listen_port: int = GATEWAY_PORT
    listen_address: str = "0.0.0.0"  # in a container every interface; make run: BIND_ADDRESS, loopback by default
    admin_port: int = GATEWAY_ADMIN_PORT
    descriptor: pathlib.Path = DESCRIPTOR_SET
    files_dir: pathlib.Path = RENDERED  # where write() puts openapi.json and docs.html
    playground_at: pathlib.Path | None = None  # where Envoy reads the playground's files; None: files_dir/playground
    swagger_ui_dir: pathlib.Path = pathlib.Path(swagger_ui_bundle.swagger_ui_path)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_upload_bytes: int = uploads.MAX_UPLOAD_BYTES  # POST /v1/files alone (gateway/openai_routes.py)
    max_connections: int = 10_000
    route_timeouts: dict[str, float] = dataclasses.field(default_factory=dict)  # cluster -> seconds (tests)
    rate_limits: dict[str, TokenBucket] = dataclasses.field(default_factory=lambda: dict(DEFAULT_BUCKETS))
    adapter_affinity: bool = True  # LLM_ADAPTER_AFFINITY: gateway/adapter_affinity.py
    api_keys: list[dict] | None = None  # gateway/edge.py's keys; None: open
    tls: tuple[str, str] | None = None  # certificate chain and private key files; None: plain HTTP
    edge_at_start: bool = False  # the keys and TLS applied where Envoy starts (edge.py), not when rendered

    @property
    def playground_dir(self) -> pathlib.Path:
        return self.playground_at or self.files_dir / "playground"


def _int_variable(environ, name: str, default: int) -> int:
    raw = environ.get(name, str(default))
    if not raw.isdigit():
        raise SystemExit(f"{name}={raw!r} is not a valid port or size (a whole number)")
    return int(raw)


def local_target(environ=os.environ, files_dir: pathlib.Path = RENDERED) -> Target:
    """make run: every backend at its <NAME>_ADDR, else on loopback at the service's port; Envoy itself listens on
    BIND_ADDRESS (loopback unless opened)."""
    return Target(
        files_dir=files_dir,
        endpoints={e.name: [e.address(environ)] for e in ENDPOINTS.values()},
        listen_address=bind_address(environ),
        listen_port=_int_variable(environ, "GATEWAY_PORT", GATEWAY_PORT),
        admin_port=_int_variable(environ, "GATEWAY_ADMIN_PORT", GATEWAY_ADMIN_PORT),
        max_body_bytes=_int_variable(environ, "GATEWAY_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        max_upload_bytes=_int_variable(environ, uploads.MAX_UPLOAD_BYTES_VARIABLE, uploads.MAX_UPLOAD_BYTES),
        rate_limits=buckets_from(environ),
        adapter_affinity=adapter_affinity.enabled(environ),
        api_keys=edge.keys_from(environ),
        tls=edge.tls_from(environ),
    )


def compose_target(environ=os.environ) -> Target:
    """The Envoy image: compose service names (every replica answers under its name), files under /etc/envoy."""
    return Target(
        endpoints={e.name: [f"{e.name}:{e.port}"] for e in ENDPOINTS.values()},
        descriptor=pathlib.Path("/etc/envoy/descriptor.pb"),
        files_dir=pathlib.Path("/etc/envoy"),
        swagger_ui_dir=pathlib.Path("/etc/envoy/swagger-ui"),
        max_upload_bytes=_int_variable(environ, uploads.MAX_UPLOAD_BYTES_VARIABLE, uploads.MAX_UPLOAD_BYTES),
        rate_limits=buckets_from(environ),
        adapter_affinity=adapter_affinity.enabled(environ),
        edge_at_start=True,
    )


def k8s_target(environ=os.environ) -> Target:
    """Kubernetes: headless Services named as in compose (DNS gives every ready pod); the rendered files from the
    envoy-config ConfigMap at /etc/envoy/config, the playground's from the envoy-playground ConfigMap (a ConfigMap
    holds no folders), Swagger UI's from the image."""
    return dataclasses.replace(compose_target(environ), descriptor=pathlib.Path("/etc/envoy/config/descriptor.pb"),
                               files_dir=pathlib.Path("/etc/envoy/config"),
                               playground_at=pathlib.Path("/etc/envoy/playground"))


TARGETS = {"compose": compose_target, "k8s": k8s_target}  # besides local, which make run renders with its own folder
