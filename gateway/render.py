"""Renders the gateway's Envoy configuration from its one source, gateway/envoy.template.yaml.

    python -m gateway.render local   --out gen/gateway               # make run: backends on loopback
    python -m gateway.render compose --out /etc/envoy                # the Envoy image: compose service names
    python -m gateway.render k8s     --out deploy/k8s/base/gateway   # Kubernetes: the envoy-config ConfigMap

Writes OUT/envoy.yaml, OUT/openapi.json, OUT/docs.html and the playground's files (OUT/playground/), and for
compose and k8s the descriptor set beside them. The targets differ only in addresses and file locations; one route
per REST-annotated method comes from the descriptor set, with its service's cluster, gateway/backends.py's timeout
and rate limit. Every target sizes the rate limits' token buckets from the environment it is rendered in
(GATEWAY_LLM_RATE, ...: gateway/rate_limits.py).
"""
import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import string

import swagger_ui_bundle
import yaml
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2

from gateway import openai_routes
from gateway.backends import BACKENDS, Backend
from gateway.http_rules import HttpBinding, http_bindings, load_descriptor_set
from gateway.openapi import openapi_document
from gateway.rate_limits import DEFAULT_BUCKETS, TokenBucket, buckets_from, rate_limit_filter, route_metadata
from textgen.endpoints import ENDPOINTS, bind_address
from textgen.paths import DESCRIPTOR_SET, GENERATED

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATE = HERE / "envoy.template.yaml"
DOCS_PAGE = HERE / "docs.html"
PLAYGROUND = HERE / "playground"  # the /playground page: static files that Envoy serves as they are
PLAYGROUND_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                    ".js": "text/javascript; charset=utf-8"}  # a module script needs a JavaScript type
# The page and its scripts come from this origin only: nothing is loaded from anywhere else at run time.
PLAYGROUND_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
RENDERED = GENERATED / "gateway"  # make run's and the tests' Envoy files
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

# The gRPC code in the google.rpc.Status body of each reply Envoy makes itself: docs/api.md's table read backwards
# (408, 413, 429 and 502 are Envoy's own: a client too slow to send, a body over the cap, a rate limit, an upstream
# reset).
LOCAL_REPLY_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    501: code_pb2.UNIMPLEMENTED,
    502: code_pb2.UNAVAILABLE,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}

# Calls the protos mark idempotent (`option idempotency_level`) are retried on another replica when one is down or
# going down; a training request never is (a retry could queue a second job).
RETRY_POLICY = {"retry_on": "connect-failure,refused-stream,reset,unavailable", "num_retries": 3,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": 5}

# Only the rate limits make Envoy answer 429 itself; its own words for it are "local_rate_limited".
RATE_LIMITED = ("rate limited: this gateway takes no more of these requests for now; retry after the seconds in "
                "the retry-after header")
NOT_ROUTED_FOR_GRPC = ("not served through the REST gateway: it routes only the methods with a REST binding; "
                       "call the service's own port for the others (reflection, health, ReloadAdapters)")


@dataclasses.dataclass(frozen=True)
class Target:
    """What Envoy is rendered for (make run and the tests, compose or Kubernetes): where it listens, where each
    backend is, and where its files are."""

    endpoints: dict[str, list[str]]  # cluster name -> ["host:port", ...]
    listen_port: int = 8080
    listen_address: str = "0.0.0.0"  # in a container every interface; make run: BIND_ADDRESS, loopback by default
    admin_port: int = 9901
    descriptor: pathlib.Path = DESCRIPTOR_SET
    files_dir: pathlib.Path = RENDERED  # where write() puts openapi.json and docs.html
    playground_at: pathlib.Path | None = None  # where Envoy reads the playground's files; None: files_dir/playground
    swagger_ui_dir: pathlib.Path = pathlib.Path(swagger_ui_bundle.swagger_ui_path)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_connections: int = 10_000
    route_timeouts: dict[str, float] = dataclasses.field(default_factory=dict)  # cluster -> seconds (tests)
    rate_limits: dict[str, TokenBucket] = dataclasses.field(default_factory=lambda: dict(DEFAULT_BUCKETS))

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
        listen_port=_int_variable(environ, "GATEWAY_PORT", 8080),
        admin_port=_int_variable(environ, "GATEWAY_ADMIN_PORT", 9901),
        max_body_bytes=_int_variable(environ, "GATEWAY_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        rate_limits=buckets_from(environ),
    )


def compose_target(environ=os.environ) -> Target:
    """The Envoy image: compose service names (every replica answers under its name), files under /etc/envoy."""
    return Target(
        endpoints={e.name: [f"{e.name}:{e.port}"] for e in ENDPOINTS.values()},
        descriptor=pathlib.Path("/etc/envoy/descriptor.pb"),
        files_dir=pathlib.Path("/etc/envoy"),
        swagger_ui_dir=pathlib.Path("/etc/envoy/swagger-ui"),
        rate_limits=buckets_from(environ),
    )


def k8s_target(environ=os.environ) -> Target:
    """Kubernetes: headless Services named as in compose (DNS gives every ready pod); the rendered files from the
    envoy-config ConfigMap at /etc/envoy/config, the playground's from the envoy-playground ConfigMap (a ConfigMap
    holds no folders), Swagger UI's from the image."""
    return dataclasses.replace(compose_target(environ), descriptor=pathlib.Path("/etc/envoy/config/descriptor.pb"),
                               files_dir=pathlib.Path("/etc/envoy/config"),
                               playground_at=pathlib.Path("/etc/envoy/playground"))


TARGETS = {"compose": compose_target, "k8s": k8s_target}


def _endpoint(address: str) -> dict:
    host, _, port = address.rpartition(":")
    return {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}


def _method_routes(target: Target, bindings: list[HttpBinding]) -> list[dict]:
    routes = []
    for binding in bindings:
        backend: Backend = BACKENDS[binding.method.containing_service.full_name]
        timeout = target.route_timeouts.get(backend.name) or (
            backend.stream_timeout_seconds if binding.method.server_streaming else backend.timeout_seconds)
        route = {"match": {"path": binding.grpc_path}, "route": {"cluster": backend.name, "timeout": f"{timeout}s"}}
        if binding.method.GetOptions().idempotency_level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN:
            route["route"]["retry_policy"] = RETRY_POLICY
        if bucket := backend.rate_limit_of(binding.method):
            route["metadata"] = route_metadata(bucket)
        if filters := openai_routes.method_route_filters(binding.method.containing_service.full_name):
            route["typed_per_filter_config"] = filters
        if route not in routes:  # additional bindings map to the same method
            routes.append(route)
    return routes


def playground_files() -> list[pathlib.Path]:
    return sorted(f for f in PLAYGROUND.iterdir() if f.suffix in PLAYGROUND_TYPES)


def playground_path(file: pathlib.Path) -> str:
    """The URL path of one of the playground's files: the page itself at /playground."""
    return "/playground" if file.name == "index.html" else f"/playground/{file.name}"


def _playground_routes(target: Target) -> list[dict]:
    """Direct responses, as /docs is served: GET only, past the transcoder (which would refuse an unknown path),
    revalidated on every load so a new version of the page is never mixed with an old script."""
    routes = []
    for file in playground_files():
        headers = {"content-type": PLAYGROUND_TYPES[file.suffix], "cache-control": "no-cache",
                   "x-content-type-options": "nosniff"}
        if file.suffix == ".html":
            headers["content-security-policy"] = PLAYGROUND_POLICY
        routes.append({
            "match": {"path": playground_path(file),
                      "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "direct_response": {"status": 200, "body": {"filename": str(target.playground_dir / file.name)}},
            "response_headers_to_add": [{"header": {"key": k, "value": v}} for k, v in headers.items()],
            "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}},
        })
    return routes


def _status_is(http: int) -> dict:
    return {"status_code_filter": {"comparison": {
        "op": "EQ", "value": {"default_value": http, "runtime_key": f"local_reply.code_{http}"}}}}


def _local_reply_mappers() -> list[dict]:
    """Envoy uses the first mapper that matches. A raw gRPC caller gets its reason as plain grpc-message text;
    a REST client gets a google.rpc.Status JSON body."""
    # The transcoder rewrites a REST request's content type to gRPC and keeps its path in x-envoy-original-path.
    is_grpc = {"and_filter": {"filters": [
        {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"}}}},
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True,
                                      "invert_match": True}}}]}}

    def grpc_text_when(status: int, text: str) -> dict:
        return {"filter": {"and_filter": {"filters": [is_grpc, _status_is(status)]}},
                "body_format_override": {"text_format_source": {"inline_string": text}}}

    grpc_text = [
        grpc_text_when(404, NOT_ROUTED_FOR_GRPC),
        grpc_text_when(429, RATE_LIMITED),
        {"filter": is_grpc, "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"}}},
    ]
    openai = [{"filter": {"and_filter": {"filters": [openai_routes.IS_OPENAI_REQUEST, _status_is(http)]}},
               "body_format_override": {"json_format": openai_routes.error_format(code, http)}}
              for http, code in LOCAL_REPLY_CODES.items()]
    return grpc_text + openai + [
        {"filter": _status_is(http), "body_format_override": {"json_format": {
            "code": code, "message": RATE_LIMITED if http == 429 else "%LOCAL_REPLY_BODY%"}}}
        for http, code in LOCAL_REPLY_CODES.items()]


def render(target: Target, bindings: list[HttpBinding]) -> dict:
    """The Envoy bootstrap for `target` serving `bindings`, as a dict ready for yaml.safe_dump."""
    values = {
        "admin_port": target.admin_port,
        "listen_address": target.listen_address,
        "listen_port": target.listen_port,
        "max_connections": target.max_connections,
        "max_body_bytes": target.max_body_bytes,
        "descriptor": str(target.descriptor),
        "files_dir": str(target.files_dir),
        "swagger_ui_dir": str(target.swagger_ui_dir),
        "services": json.dumps([s for s in BACKENDS if s not in openai_routes.SERVICES]),
        "local_reply_mappers": json.dumps(_local_reply_mappers()),
        **{f"{name}_endpoints": json.dumps([_endpoint(a) for a in addresses])
           for name, addresses in target.endpoints.items()},
    }
    config = yaml.safe_load(string.Template(TEMPLATE.read_text()).substitute(values))
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    routes[:0] = _method_routes(target, bindings) + openai_routes.rest_routes(manager["http_filters"])
    routes += _playground_routes(target)
    manager["http_filters"][-1:-1] = [rate_limit_filter(name, bucket) for name, bucket in target.rate_limits.items()]
    return config


def write(target: Target, out: pathlib.Path, descriptor: pathlib.Path = DESCRIPTOR_SET) -> pathlib.Path:
    """Writes out/envoy.yaml, out/openapi.json, out/docs.html and out/playground/ from the descriptor set
    protos/build.py made; returns the config's path."""
    files = load_descriptor_set(descriptor)
    bindings = http_bindings(files)
    out.mkdir(parents=True, exist_ok=True)
    (out / "openapi.json").write_text(json.dumps(openapi_document(bindings, files), indent=1))
    (out / "docs.html").write_text(DOCS_PAGE.read_text())
    (out / "playground").mkdir(exist_ok=True)
    for file in playground_files():
        shutil.copyfile(file, out / "playground" / file.name)
    if target.descriptor == target.files_dir / "descriptor.pb":  # shipped beside the config
        (out / "descriptor.pb").write_bytes(descriptor.read_bytes())
    config = out / "envoy.yaml"
    config.write_text(yaml.safe_dump(render(target, bindings), sort_keys=False))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["local", *TARGETS])
    parser.add_argument("--out", type=pathlib.Path, required=True, help="folder for envoy.yaml and openapi.json")
    args = parser.parse_args()
    target = local_target(files_dir=args.out.resolve()) if args.target == "local" else TARGETS[args.target]()
    print(write(target, args.out))


if __name__ == "__main__":
    main()
