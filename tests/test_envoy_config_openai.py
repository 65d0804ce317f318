"""The gateway's OpenAI paths as rendered: a stream route and a unary route on /v1, each with its own copy of the
transcoder's configuration; the OpenAI methods' routes turn on the Lua filter that makes the service's error trailer
the body, and Envoy's own replies there are in OpenAI's error form."""
from google.protobuf import json_format

from envoy.extensions.filters.http.buffer.v3 import buffer_pb2
from envoy.extensions.filters.http.grpc_json_transcoder.v3 import transcoder_pb2
from envoy.extensions.filters.http.json_to_metadata.v3 import json_to_metadata_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from gateway.local_replies import LOCAL_REPLY_CODES, MESSAGES
from tests.rendered_envoy import manager
from textgen.openai_error_body import HEADER


def transcoder_of(route) -> transcoder_pb2.GrpcJsonTranscoder:
    config = transcoder_pb2.GrpcJsonTranscoder()
    route.typed_per_filter_config["envoy.filters.http.grpc_json_transcoder"].Unpack(config)
    return config


def test_the_openai_paths_have_a_stream_route_and_a_unary_route_each_with_its_transcoder(rendered):
    config = manager(rendered["local"]["dict"])
    main = transcoder_pb2.GrpcJsonTranscoder()
    config.http_filters[4].typed_config.Unpack(main)
    v1 = [r for r in config.route_config.virtual_hosts[0].routes if r.match.path_separated_prefix == "/v1"]
    assert [r.direct_response.status for r in v1] == [404, 404]  # they only choose the transcoder's configuration
    stream, unary = v1  # the stream route first: the default route matches every /v1 request
    streaming = stream.match.dynamic_metadata[0]
    assert (streaming.filter, streaming.path[0].key, streaming.value.bool_match) == ("openai", "stream", True)
    assert not unary.match.dynamic_metadata
    sse, plain = transcoder_of(stream), transcoder_of(unary)
    assert list(sse.services) == ["textgen.v1.OpenAiStreamService", "textgen.v1.ResponsesStreamService"]
    assert list(plain.services) == ["textgen.v1.OpenAiService", "textgen.v1.ResponsesService",
                                    "textgen.v1.FileService", "textgen.v1.FineTuningService"]
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
        openai = route.match.path.startswith(("/textgen.v1.OpenAiService/", "/textgen.v1.OpenAiStreamService/",
                                              "/textgen.v1.ResponsesService/", "/textgen.v1.ResponsesStreamService/",
                                              "/textgen.v1.FileService/", "/textgen.v1.FineTuningService/"))
        chosen = lua_pb2.LuaPerRoute()
        if per_route := route.typed_per_filter_config.get("envoy.filters.http.lua"):
            per_route.Unpack(chosen)
            assert chosen.name in lua.source_codes
        # The routes matched before transcoding run the adapter affinity's script (test_adapter_affinity.py).
        assert (chosen.name == "openai_error_body") == openai, route.match.path
    openai_mappers = [json_format.MessageToDict(m.body_format_override.json_format)
                      for m in config.local_reply_config.mappers if m.filter.HasField("and_filter")
                      and m.body_format_override.HasField("json_format")]
    assert len(openai_mappers) == len(LOCAL_REPLY_CODES)
    # Envoy's own words, but for those replies that have words of ours (no key, a key out of scope, a rate limit).
    assert all(set(body) == {"error"} for body in openai_mappers)
    assert sorted(body["error"]["message"] for body in openai_mappers) == sorted(
        MESSAGES.get(status, "%LOCAL_REPLY_BODY%") for status in LOCAL_REPLY_CODES)


def test_the_lua_filter_reads_the_trailer_the_llm_service_writes(rendered):
    lua = lua_pb2.Lua()
    manager(rendered["local"]["dict"]).http_filters[2].typed_config.Unpack(lua)
    source = lua.source_codes["openai_error_body"].inline_string
    assert f'get("{HEADER}")' in source and f'remove("{HEADER}")' in source


def test_an_upload_alone_may_be_large_and_is_not_read_as_json(rendered):
    """POST /v1/files: a route of its own, matched before the /v1 routes, raising the buffer's cap (1 MiB elsewhere)
    to 64 MiB for that route only, without json_to_metadata (the body is a form)."""
    routes = list(manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes)
    [upload] = [r for r in routes if r.match.path == "/v1/files"]
    assert [(h.name, h.string_match.exact) for h in upload.match.headers] == [(":method", "POST")]
    first_v1 = next(i for i, r in enumerate(routes) if r.match.path_separated_prefix == "/v1")
    assert routes.index(upload) < first_v1
    cap = buffer_pb2.BufferPerRoute()
    upload.typed_per_filter_config["envoy.filters.http.buffer"].Unpack(cap)
    assert cap.buffer.max_request_bytes.value == 64 * 1024 * 1024
    transcoder = transcoder_of(upload)
    assert "textgen.v1.FileService" in transcoder.services
    assert transcoder.max_request_body_size.value == 64 * 1024 * 1024
    assert "envoy.filters.http.json_to_metadata" not in upload.typed_per_filter_config
    # A raw gRPC upload through the gateway (the textgen command's) matches the method's own route: the same cap.
    [method] = [r for r in routes if r.match.path == "/textgen.v1.FileService/CreateFile"]
    method.typed_per_filter_config["envoy.filters.http.buffer"].Unpack(cap)
    assert cap.buffer.max_request_bytes.value == 64 * 1024 * 1024
