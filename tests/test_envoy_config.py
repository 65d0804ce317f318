"""The gateway's Envoy configuration, rendered for make run (local) and for compose from its one template: both pass
`envoy --mode validate` and parse into Envoy's own Bootstrap proto (xds-protos: a misspelt field fails); they differ
only in addresses and file locations; routes, clusters and the transcoder match the descriptor set, the backends
table and docker-compose.yml; the rate limits' buckets are the documented defaults, on the routes backends.py says."""
import copy
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml
from google.protobuf import json_format

# Every @type the configuration uses must be importable, or ParseDict cannot resolve it.
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.route.v3 import route_components_pb2  # noqa: F401
from envoy.extensions.filters.http.buffer.v3 import buffer_pb2
from envoy.extensions.filters.http.grpc_json_transcoder.v3 import transcoder_pb2
from envoy.extensions.filters.http.json_to_metadata.v3 import json_to_metadata_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import downstream_connections_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from gateway import openai_routes, render
from gateway.backends import BACKENDS
from gateway.http_rules import http_bindings, load_descriptor_set
from gateway.rate_limits import DEFAULT_BUCKETS
from textgen.endpoints import ENDPOINTS
from textgen.paths import DESCRIPTOR_SET, ENVOY, ROOT

IMAGE_DIR = "/etc/envoy"
# Both ways a rate becomes whole tokens per fill interval: one token every 2 s, 250 tokens a second.
RATE_SETTINGS = {"GATEWAY_LLM_RATE": "0.5", "GATEWAY_LLM_BURST": "1", "GATEWAY_TRAIN_RATE": "250",
                 "GATEWAY_TRAIN_BURST": "20"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    """Both targets written as the renderer writes them; the compose one with its /etc/envoy files laid out in a
    folder of their own (descriptor, openapi.json, docs.html, swagger-ui), as the image's Dockerfile lays them out;
    the local one once more with rate limits set."""
    local_dir, image_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("etc-envoy")
    settings_dir = tmp_path_factory.mktemp("local-rate-settings")
    local = render.write(render.local_target({}, files_dir=local_dir), local_dir)
    settings = render.write(render.local_target(RATE_SETTINGS, files_dir=settings_dir), settings_dir)
    compose = render.write(render.compose_target({}), image_dir)
    shutil.copytree(render.local_target({}).swagger_ui_dir, image_dir / "swagger-ui")
    compose_here = image_dir / "envoy-here.yaml"
    compose_here.write_text(compose.read_text().replace(IMAGE_DIR, str(image_dir)))
    return {"local": {"path": local, "dict": yaml.safe_load(local.read_text())},
            "compose": {"path": compose_here, "dict": yaml.safe_load(compose.read_text())},
            "rate settings": {"path": settings, "dict": yaml.safe_load(settings.read_text())}}


def bootstrap(config: dict) -> bootstrap_pb2.Bootstrap:
    return json_format.ParseDict(config, bootstrap_pb2.Bootstrap())


def manager(config: dict) -> http_connection_manager_pb2.HttpConnectionManager:
    unpacked = http_connection_manager_pb2.HttpConnectionManager()
    bootstrap(config).static_resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(unpacked)
    return unpacked


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
                     "envoy.filters.http.grpc_json_transcoder", "rate_limit.llm", "rate_limit.train",
                     "envoy.filters.http.router"]
    assert [f.name for f in config.http_filters if f.disabled] == ["envoy.filters.http.json_to_metadata"]
    buffer, transcoder = buffer_pb2.Buffer(), transcoder_pb2.GrpcJsonTranscoder()
    config.http_filters[0].typed_config.Unpack(buffer)
    config.http_filters[3].typed_config.Unpack(transcoder)
    assert buffer.max_request_bytes.value == transcoder.max_request_body_size.value == render.DEFAULT_MAX_BODY_BYTES
    annotated = {b.method.containing_service.full_name for b in http_bindings(load_descriptor_set(DESCRIPTOR_SET))}
    # The OpenAI services bind the same paths twice over: each is served by a /v1 route's copy of the transcoder.
    assert set(transcoder.services) == annotated - set(openai_routes.SERVICES) == set(BACKENDS) - set(
        openai_routes.SERVICES)
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
    direct = {r.match.path: r for r in routes if r.HasField("direct_response") and r.match.path}
    playground = {render.playground_path(file) for file in render.playground_files()}
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


def rate_limit_filters(config: dict) -> dict[str, local_rate_limit_pb2.LocalRateLimit]:
    """bucket name -> its filter's configuration."""
    found = {}
    for http_filter in manager(config).http_filters:
        unpacked = local_rate_limit_pb2.LocalRateLimit()
        if http_filter.typed_config.Unpack(unpacked):
            found[http_filter.name.removeprefix("rate_limit.")] = unpacked
    return found


def test_the_llm_routes_and_the_training_calls_that_start_or_cancel_work_take_tokens(rendered):
    routes = manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes
    metadata = {r.match.path: r.metadata.filter_metadata for r in routes if r.HasField("route")}
    buckets = {path: m["textgen"]["rate_limit"] if "textgen" in m else None for path, m in metadata.items()}
    limited = {path: bucket for path, bucket in buckets.items() if bucket}
    served_by_llm = ("/textgen.v1.LlmService/", *(f"/{service}/" for service in openai_routes.SERVICES))
    assert {path for path, bucket in limited.items() if bucket == "llm"} == {
        path for path in buckets if path.startswith(served_by_llm)}  # the OpenAI paths too
    assert {path for path, bucket in limited.items() if bucket != "llm"} == {
        "/textgen.v1.TrainerService/TrainSft", "/textgen.v1.TrainerService/TrainRl",
        "/textgen.v1.TrainerService/CancelJob"}
    assert "/textgen.v1.OpenAiService/CreateChatCompletion" in limited
    assert "/textgen.v1.TrainerService/WatchJob" in buckets and "/textgen.v1.BigramService/Generate" in buckets
    for name, rate_limit in rate_limit_filters(rendered["local"]["dict"]).items():
        assert rate_limit.filter_enabled.default_value.numerator == 100
        assert rate_limit.filter_enforced.default_value.numerator == 100
        assert rate_limit.rate_limited_as_resource_exhausted and not rate_limit.HasField("token_bucket")
        assert [(e.key, e.value) for e in rate_limit.descriptors[0].entries] == [("rate_limit", name)]
        assert [h.header.key for h in rate_limit.response_headers_to_add] == ["retry-after"]


def test_the_rendered_rate_limits_are_the_documented_defaults(rendered):
    documented = re.findall(r"^\| `GATEWAY_(\w+)_RATE`, `GATEWAY_\1_BURST` \| ([\d.]+), (\d+) \|",
                            (ROOT / "docs" / "usage.md").read_text(), flags=re.MULTILINE)
    assert {name.lower(): (float(rate), int(burst)) for name, rate, burst in documented} == {
        name: (bucket.rate, bucket.burst) for name, bucket in DEFAULT_BUCKETS.items()}
    for target in ("local", "compose"):
        for name, rate_limit in rate_limit_filters(rendered[target]["dict"]).items():
            bucket = rate_limit.descriptors[0].token_bucket
            rate = bucket.tokens_per_fill.value / bucket.fill_interval.ToTimedelta().total_seconds()
            assert (rate, bucket.max_tokens) == (DEFAULT_BUCKETS[name].rate, DEFAULT_BUCKETS[name].burst)
            assert rate_limit.response_headers_to_add[0].header.value == "1"


def transcoder_of(route) -> transcoder_pb2.GrpcJsonTranscoder:
    config = transcoder_pb2.GrpcJsonTranscoder()
    route.typed_per_filter_config["envoy.filters.http.grpc_json_transcoder"].Unpack(config)
    return config


def test_the_openai_paths_have_a_stream_route_and_a_unary_route_each_with_its_transcoder(rendered):
    config = manager(rendered["local"]["dict"])
    main = transcoder_pb2.GrpcJsonTranscoder()
    config.http_filters[3].typed_config.Unpack(main)
    v1 = [r for r in config.route_config.virtual_hosts[0].routes if r.match.path_separated_prefix == "/v1"]
    assert [r.direct_response.status for r in v1] == [404, 404]  # they only choose the transcoder's configuration
    stream, unary = v1  # the stream route first: the default route matches every /v1 request
    streaming = stream.match.dynamic_metadata[0]
    assert (streaming.filter, streaming.path[0].key, streaming.value.bool_match) == ("openai", "stream", True)
    assert not unary.match.dynamic_metadata
    sse, plain = transcoder_of(stream), transcoder_of(unary)
    assert list(sse.services) == [openai_routes.STREAM] and list(plain.services) == [openai_routes.UNARY]
    assert sse.print_options.stream_sse_style_delimited and not sse.print_options.stream_newline_delimited
    assert not sse.print_options.add_whitespace  # it would break the events' framing
    assert plain.url_unescape_spec == plain.ALL_CHARACTERS  # a model id may hold a slash
    for copied in (sse, plain):  # otherwise the main configuration's
        assert copied.print_options.always_print_primitive_fields and copied.print_options.preserve_proto_field_names
        assert copied.convert_grpc_status and copied.request_validation_options == main.request_validation_options
        assert copied.proto_descriptor == main.proto_descriptor
    rules = json_to_metadata_pb2.JsonToMetadata()
    unary.typed_per_filter_config["envoy.filters.http.json_to_metadata"].Unpack(rules)
    assert rules.request_rules.allow_empty_content_type and rules.request_rules.allow_content_types_regex.regex
    assert [s.key for s in rules.request_rules.rules[0].selectors] == ["stream"]  # the top-level field only


def test_the_openai_methods_routes_turn_on_the_error_body_and_envoy_replies_there_in_openai_form(rendered):
    config = manager(rendered["local"]["dict"])
    lua = lua_pb2.Lua()
    config.http_filters[2].typed_config.Unpack(lua)
    for route in config.route_config.virtual_hosts[0].routes:
        openai = route.match.path.startswith(tuple(f"/{s}/" for s in openai_routes.SERVICES))
        per_route = route.typed_per_filter_config.get("envoy.filters.http.lua")
        assert (per_route is not None) == openai, route.match.path
        if openai:
            chosen = lua_pb2.LuaPerRoute()
            per_route.Unpack(chosen)
            assert chosen.name in lua.source_codes
    openai_mappers = [json_format.MessageToDict(m.body_format_override.json_format)
                      for m in config.local_reply_config.mappers if m.filter.HasField("and_filter")
                      and m.body_format_override.HasField("json_format")]
    assert len(openai_mappers) == len(render.LOCAL_REPLY_CODES)
    assert all(set(body) == {"error"} and body["error"]["message"] == "%LOCAL_REPLY_BODY%" for body in openai_mappers)
