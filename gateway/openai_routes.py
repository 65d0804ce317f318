"""How Envoy serves the OpenAI-compatible paths (/v1/chat/completions, /v1/completions, /v1/models[/{id}]) from the
llm service's OpenAiService and OpenAiStreamService, through the same transcoder as every other path.

OpenAI picks streaming with the body's `stream` on one path, so the two services bind the same paths. The main
transcoder configuration serves neither; two routes on /v1 carry their own copies of it, each for one service:
- the stream route matches `stream: true`, which the json_to_metadata filter reads from the body into dynamic
  metadata (it then clears the route cache, so the route is chosen again); its copy writes each message as a
  server-sent event, `data: {...}` (Envoy never sends `data: [DONE]`: the stream simply ends);
- the default route serves OpenAiService, decodes every escaped character of a path's model id (an id may hold `/`),
  and turns json_to_metadata on.
Both only choose the transcoder's configuration: once transcoded, a request is routed again on its gRPC path, to the
method's generated route (cluster and timeout from gateway/backends.py). A request not transcoded gets 404.
The OpenAI methods' routes turn on the Lua filter that makes the service's error trailer (textgen.openai_error_body's
HEADER) the body, and Envoy's own replies on /v1 get OpenAI's error body too (gateway/local_replies.py), so every
error the `openai` client sees there is {"error": {"message", "type", "param", "code"}}.
"""
from textgen.openai_error_body import RATE_LIMIT_EXCEEDED, error_body

UNARY, STREAM = "textgen.v1.OpenAiService", "textgen.v1.OpenAiStreamService"
SERVICES = (UNARY, STREAM)
PREFIX = "/v1"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
JSON_TO_METADATA = "envoy.filters.http.json_to_metadata"
LUA = "envoy.filters.http.lua"
STREAMING = {"filter": "openai", "path": [{"key": "stream"}], "value": {"bool_match": True}}
# A request on /v1, before transcoding (:path) or after it (Envoy keeps the original path).
IS_OPENAI_REQUEST = {"or_filter": {"filters": [
    {"header_filter": {"header": {"name": name, "string_match": {"prefix": f"{PREFIX}/"}}}}
    for name in (":path", "x-envoy-original-path")]}}


def _typed_config(http_filters: list[dict], name: str) -> dict:
    return next(f["typed_config"] for f in http_filters if f["name"] == name)


def rest_routes(http_filters: list[dict]) -> list[dict]:
    """The two /v1 routes, their transcoder configurations copied from the main one in `http_filters`."""
    transcoder = _typed_config(http_filters, TRANSCODER)
    stream = {**transcoder, "services": [STREAM], "print_options": {
        **transcoder["print_options"], "stream_newline_delimited": False, "stream_sse_style_delimited": True}}
    unary = {**transcoder, "services": [UNARY], "url_unescape_spec": "ALL_CHARACTERS"}
    not_transcoded = {"status": 404, "body": {"inline_string": f"{PREFIX} paths are served as JSON only"}}
    return [
        {"match": {"path_separated_prefix": PREFIX, "dynamic_metadata": [STREAMING]},
         "direct_response": not_transcoded, "typed_per_filter_config": {TRANSCODER: stream}},
        {"match": {"path_separated_prefix": PREFIX}, "direct_response": not_transcoded,
         "typed_per_filter_config": {TRANSCODER: unary,
                                     JSON_TO_METADATA: _typed_config(http_filters, JSON_TO_METADATA)}},
    ]


def method_route_filters(service: str) -> dict:
    """What an OpenAI method's route turns on: the Lua filter's OpenAI error body."""
    if service not in SERVICES:
        return {}
    return {LUA: {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                  "name": "openai_error_body"}}


def error_format(grpc_code: int, http_status: int, message: str | None = None) -> dict:
    """The body of Envoy's own reply with this status on /v1 (its message: `message`, else the reply's)."""
    code = {429: RATE_LIMIT_EXCEEDED, 401: "invalid_api_key"}.get(http_status)
    return error_body(message or "%LOCAL_REPLY_BODY%", grpc_code, code)
