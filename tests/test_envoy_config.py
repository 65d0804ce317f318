"""The gateway's Envoy configuration, rendered for make run (local) and for compose from its one template: both pass
`envoy --mode validate` and parse into Envoy's own Bootstrap proto (xds-protos: a misspelt field fails); they differ
only in addresses and file locations; routes, clusters and the transcoder match the descriptor set, the backends
table and docker-compose.yml. The rate limits and the OpenAI paths: test_envoy_config_rate_limits.py and
test_envoy_config_openai.py."""
import copy
import pathlib
import re
import subprocess

import pytest
import yaml
from google.protobuf import json_format

from envoy.extensions.filters.http.buffer.v3 import buffer_pb2
from envoy.extensions.filters.http.grpc_json_transcoder.v3 import transcoder_pb2
from gateway.backends import BACKENDS
from gateway.http_rules import http_bindings, load_descriptor_set
from gateway.playground_routes import playground_files, playground_path
from gateway.targets import DEFAULT_MAX_BODY_BYTES
from tests.rendered_envoy import bootstrap, manager
from textgen.endpoints import ENDPOINTS
from textgen.paths import DESCRIPTOR_SET, ENVOY, ROOT


@pytest.mark.parametrize("target", ["local", "compose", "rate settings"])
def test_envoy_validates_the_rendered_configuration(rendered, target):
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(rendered[target]["path"])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and " OK" in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_misspelt_field_is_rejected(rendered):
    config = copy.deepcopy(rendered["local"]["dict"])
    config["static_resources"]["clusters"][0]["conect_timeout"] = "1s"
    with pytest.raises(json_format.ParseError):
        bootstrap(config)


def test_targets_differ_only_in_addresses_and_file_locations(rendered):
    def normalised(config: dict) -> dict:
        config = copy.deepcopy(config)
        for cluster in config["static_resources"]["clusters"]:
            cluster["load_assignment"]["endpoints"] = "ADDRESSES"
        for listener in config["static_resources"]["listeners"]:
            listener["address"]["socket_address"]["address"] = "LISTEN"
        text = yaml.safe_dump(config)
        return yaml.safe_load(re.sub(r"(filename|proto_descriptor): \S+", r"\1: FILE", text))

    local, compose = (normalised(rendered[t]["dict"]) for t in ("local", "compose"))
    assert local == compose
    listens = {t: rendered[t]["dict"]["static_resources"]["listeners"][0]["address"]["socket_address"]["address"]
               for t in ("local", "compose")}
    assert listens == {"local": "127.0.0.1", "compose": "0.0.0.0"}  # make run: loopback unless BIND_ADDRESS opens it


def test_compose_addresses_are_the_compose_services(rendered):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    clusters = {c.name: c for c in bootstrap(rendered["compose"]["dict"]).static_resources.clusters}
    assert set(clusters) == set(ENDPOINTS)
    for endpoint in ENDPOINTS.values():
        cluster = clusters[endpoint.name]
        assert cluster.type == cluster.STRICT_DNS  # every replica of a scaled service is an endpoint
        assert "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" in cluster.typed_extension_protocol_options
        assert cluster.health_checks[0].HasField("grpc_health_check")
        address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
        assert (address.address, address.port_value) == (endpoint.name, endpoint.port)
        assert f"localhost:{endpoint.port}" in compose[endpoint.name]["healthcheck"]["test"]
    assert "envoy" in compose


def test_filters_transcoder_options_and_limits(rendered):
    config = manager(rendered["local"]["dict"])
    names = [f.name for f in config.http_filters]
    # The rate limits come after the transcoder: a REST request is limited by the route of its gRPC method.
    assert names == ["envoy.filters.http.buffer", "envoy.filters.http.json_to_metadata", "envoy.filters.http.lua",
                     # Headers gRPC cannot carry and unknown OpenAI fields, before transcoding: test_request_checks.py.
                     "textgen.request_checks", "envoy.filters.http.grpc_json_transcoder",
                     # The caller's name a client sent is dropped (only the API key check writes it: test_api_keys.py).
                     "envoy.filters.http.header_mutation",
                     "rate_limit.llm", "rate_limit.small_models", "rate_limit.train",
                     "envoy.filters.http.router"]
    assert [f.name for f in config.http_filters if f.disabled] == ["envoy.filters.http.json_to_metadata"]
    buffer, transcoder = buffer_pb2.Buffer(), transcoder_pb2.GrpcJsonTranscoder()
    config.http_filters[0].typed_config.Unpack(buffer)
    config.http_filters[4].typed_config.Unpack(transcoder)
    assert buffer.max_request_bytes.value == transcoder.max_request_body_size.value == DEFAULT_MAX_BODY_BYTES
    annotated = {b.method.containing_service.full_name for b in http_bindings(load_descriptor_set(DESCRIPTOR_SET))}
    # The services on /v1 (the OpenAI services bind the same paths twice over) are each served by a /v1 route's copy
    # of the transcoder.
    on_v1 = {"textgen.v1.OpenAiService", "textgen.v1.OpenAiStreamService", "textgen.v1.ResponsesService",
             "textgen.v1.ResponsesStreamService", "textgen.v1.FileService", "textgen.v1.FineTuningService"}
    assert set(transcoder.services) == annotated - on_v1 == set(BACKENDS) - on_v1
    options = transcoder.print_options
    assert options.preserve_proto_field_names and options.always_print_primitive_fields
    assert options.stream_newline_delimited and transcoder.convert_grpc_status
    validation = transcoder.request_validation_options
    assert validation.reject_unknown_method and validation.reject_unknown_query_parameters
    assert validation.reject_binding_body_field_collisions
    monitors = bootstrap(rendered["local"]["dict"]).overload_manager.resource_monitors
    assert [m.name for m in monitors] == ["envoy.resource_monitors.global_downstream_max_connections"]


def test_one_route_per_rest_method_with_its_backend_and_timeout(rendered):
    routes = manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes
    assert all(not r.match.prefix for r in routes), "a prefix route would expose gRPC-only methods"
    routed = {r.match.path: r.route for r in routes if r.HasField("route")}
    files = load_descriptor_set(DESCRIPTOR_SET)
    expected = {}
    for binding in http_bindings(files):
        backend = BACKENDS[binding.method.containing_service.full_name]
        expected[binding.grpc_path] = (backend.name, backend.stream_timeout_seconds
                                       if binding.method.server_streaming else backend.timeout_seconds)
    assert {path: (r.cluster, r.timeout.seconds) for path, r in routed.items()} == expected
    every_method = {f"/{f.package}.{s.name}/{m.name}" for f in files.file for s in f.service for m in s.method}
    assert "/textgen.v1.LlmService/ReloadAdapters" in every_method - set(routed)


def test_docs_and_the_playground_are_direct_responses_that_skip_the_transcoder(rendered):
    routes = manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes
    # (The routes that only read a body before transcoding, for the adapter affinity, answer from no file.)
    # (Nor does the upload route, which only raises the body's cap before transcoding: test_envoy_config_openai.py.)
    direct = {r.match.path: r for r in routes if r.HasField("direct_response") and r.match.path
              and "envoy.filters.http.json_to_metadata" not in r.typed_per_filter_config
              and "envoy.filters.http.buffer" not in r.typed_per_filter_config}
    playground = {playground_path(file) for file in playground_files()}
    assert {"/playground", "/playground/main.js", "/playground/style.css"} <= playground
    assert set(direct) == {"/openapi.json", "/docs", "/docs/static/swagger-ui-bundle.js",
                           "/docs/static/swagger-ui.css"} | playground
    for route in direct.values():
        assert "envoy.filters.http.grpc_json_transcoder" in route.typed_per_filter_config
        assert route.direct_response.body.filename
        assert [(h.name, h.string_match.exact) for h in route.match.headers] == [(":method", "GET")]  # read-only
    for target in ("local", "compose"):  # every file a route names was written beside the configuration
        served = {r.match.path: pathlib.PurePath(r.direct_response.body.filename) for r in
                  manager(rendered[target]["dict"]).route_config.virtual_hosts[0].routes if r.match.path in playground}
        assert set(served) == playground
        for path, filename in served.items():
            assert filename.parent.name == "playground", (target, path)
            assert (rendered[target]["path"].parent / "playground" / filename.name).is_file(), (target, path)
    page = {h.header.key: h.header.value for h in direct["/playground"].response_headers_to_add}
    assert page["content-type"].startswith("text/html") and "default-src 'self'" in page["content-security-policy"]
    script = {h.header.key: h.header.value for h in direct["/playground/main.js"].response_headers_to_add}
    assert script["content-type"].startswith("text/javascript")  # browsers refuse a module script of another type


def test_every_reply_envoy_makes_itself_is_a_status_body(rendered):
    mappers = manager(rendered["local"]["dict"]).local_reply_config.mappers
    mapped = {}
    for mapper in mappers:
        if mapper.filter.HasField("status_code_filter"):
            body = json_format.MessageToDict(mapper.body_format_override.json_format)
            mapped[mapper.filter.status_code_filter.comparison.value.default_value] = body
    assert set(mapped) >= {400, 404, 408, 413, 429, 500, 502, 503, 504}
    assert all(set(body) == {"code", "message"} for body in mapped.values())
    assert (mapped[400]["code"], mapped[404]["code"], mapped[503]["code"], mapped[504]["code"]) == (3, 5, 14, 4)


def test_the_descriptor_holds_every_error_detail_type_a_service_emits():
    held = {f"{f.package}.{m.name}" for f in load_descriptor_set(DESCRIPTOR_SET).file for m in f.message_type}
    emitted = set()
    for source in (ROOT / "services").rglob("*.py"):
        emitted |= {f"google.rpc.{name}" for name in re.findall(r"error_details_pb2\.(\w+)", source.read_text())}
    assert "google.rpc.BadRequest" in emitted
    assert emitted | {"google.rpc.Status"} <= held
    # The whole of error_details.proto, so a detail type a service starts sending later is covered too.
    assert {f.name for f in load_descriptor_set(DESCRIPTOR_SET).file} >= {"google/rpc/status.proto",
                                                                     "google/rpc/error_details.proto"}


def test_the_request_checks_know_the_fields_of_openais_json_paths_only(rendered):
    checks = next(f for f in rendered["local"]["dict"]["static_resources"]["listeners"][0]["filter_chains"][0][
        "filters"][0]["typed_config"]["http_filters"] if f["name"] == "textgen.request_checks")
    script = checks["typed_config"]["default_source_code"]["inline_string"]
    fields_line = next(line for line in script.splitlines() if line.startswith("local FIELDS = "))
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/fine_tuning/jobs"):
        assert f'["{path}"] = {{' in fields_line
    # Both of a field's JSON spellings; an upload (multipart) and the native paths are not checked.
    assert '["max_tokens"] = true' in fields_line and '["maxTokens"] = true' in fields_line
    assert '"/v1/files"' not in fields_line and '"/generate_with_llm"' not in fields_line
