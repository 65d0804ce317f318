"""How Envoy serves the OpenAI-compatible paths (/v1/chat/completions, /v1/completions, /v1/models[/{id}],
/v1/responses[/{id}]) from the llm service's OpenAiService, ResponsesService and their stream services, and OpenAI's
files and fine-tuning paths (/v1/files...,
/v1/fine_tuning/jobs..., DELETE /v1/models/{id}) from the trainer's FileService and FineTuningService, through the
same transcoder as every other path.

OpenAI picks streaming with the body's `stream` on one path, so the two services bind the same paths. The main
transcoder configuration serves neither; two routes on /v1 carry their own copies of it, each for one service:
- the stream route matches `stream: true`, which the json_to_metadata filter reads from the body into dynamic
  metadata (it then clears the route cache, so the route is chosen again); its copy writes each message as a
  server-sent event, `data: {...}` (Envoy never sends `data: [DONE]`: the stream simply ends);
- the default route serves OpenAiService and the trainer's two, decodes every escaped character of a path's model id
  (an id may hold `/`), and turns json_to_metadata on;
- before both, POST /v1/files (an upload: multipart/form-data, whose body the transcoder hands on as HttpBody
  messages of up to 1 MiB) raises the buffer filter's cap to MAX_UPLOAD_BYTES for that route alone, and skips
  json_to_metadata, which would try to read the form as JSON.
Both only choose the transcoder's configuration: once transcoded, a request is routed again on its gRPC path, to the
method's generated route (cluster and timeout from gateway/backends.py). A request not transcoded gets 404.
The OpenAI methods' routes turn on the Lua filter that makes the service's error trailer (textgen.openai_error_body's
HEADER) the body, and Envoy's own replies on /v1 get OpenAI's error body too (gateway/local_replies.py), so every
error the `openai` client sees there is {"error": {"message", "type", "param", "code"}}.
"""
from textgen import openai_error_body
from textgen.openai_error_body import RATE_LIMIT_EXCEEDED, error_body

UNARY, STREAM = "textgen.v1.OpenAiService", "textgen.v1.OpenAiStreamService"
RESPONSES, RESPONSES_STREAM = "textgen.v1.ResponsesService", "textgen.v1.ResponsesStreamService"
STREAMS = (STREAM, RESPONSES_STREAM)  # what a request with `stream: true` is served by
SERVICES = (UNARY, STREAM, RESPONSES, RESPONSES_STREAM)  # the llm's
OPENAI_SHAPED = openai_error_body.SERVICES  # served on /v1 only, each error in OpenAI's body
TRAINER_SERVICES = tuple(service for service in OPENAI_SHAPED if service not in SERVICES)
PREFIX = "/v1"
UPLOAD_PATH = "/v1/files"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
BUFFER = "envoy.filters.http.buffer"
JSON_TO_METADATA = "envoy.filters.http.json_to_metadata"
LUA = "envoy.filters.http.lua"
STREAMING = {"filter": "openai", "path": [{"key": "stream"}], "value": {"bool_match": True}}
# A request on /v1, before transcoding (:path) or after it (Envoy keeps the original path).
IS_OPENAI_REQUEST = {"or_filter": {"filters": [
    {"header_filter": {"header": {"name": name, "string_match": {"prefix": f"{PREFIX}/"}}}}
    for name in (":path", "x-envoy-original-path")]}}


def _typed_config(http_filters: list[dict], name: str) -> dict:
    return next(f["typed_config"] for f in http_filters if f["name"] == name)


def rest_routes(http_filters: list[dict], max_upload_bytes: int) -> list[dict]:
    """The upload route and the two /v1 routes, their transcoder configurations copied from the main one in
    `http_filters`."""
    transcoder = _typed_config(http_filters, TRANSCODER)
    stream = {**transcoder, "services": list(STREAMS), "print_options": {
        **transcoder["print_options"], "stream_newline_delimited": False, "stream_sse_style_delimited": True}}
    unary = {**transcoder, "services": [UNARY, RESPONSES, *TRAINER_SERVICES], "url_unescape_spec": "ALL_CHARACTERS"}
    not_transcoded = {"status": 404, "body": {"inline_string": f"{PREFIX} paths are served as JSON only"}}
    return [
        {"match": {"path": UPLOAD_PATH, "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
         "direct_response": not_transcoded, "typed_per_filter_config": {
             TRANSCODER: {**unary, "max_request_body_size": max_upload_bytes}, BUFFER: upload_cap(max_upload_bytes)}},
        {"match": {"path_separated_prefix": PREFIX, "dynamic_metadata": [STREAMING]},
         "direct_response": not_transcoded, "typed_per_filter_config": {TRANSCODER: stream}},
        {"match": {"path_separated_prefix": PREFIX}, "direct_response": not_transcoded,
         "typed_per_filter_config": {TRANSCODER: unary,
                                     JSON_TO_METADATA: _typed_config(http_filters, JSON_TO_METADATA)}},
    ]


def upload_cap(max_upload_bytes: int) -> dict:
    """The buffer filter's cap on an upload's route: the REST path's (matched before transcoding) and, for a raw
    gRPC caller (the textgen command through the gateway), the client-streaming method's own."""
    return {"@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "buffer": {"max_request_bytes": max_upload_bytes}}


def method_route_filters(service: str) -> dict:
    """What an OpenAI method's route turns on: the Lua filter's OpenAI error body."""
    if service not in OPENAI_SHAPED:
        return {}
    return {LUA: {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                  "name": "openai_error_body"}}


def error_format(grpc_code: int, http_status: int, message: str | None = None) -> dict:
    """The body of Envoy's own reply with this status on /v1 (its message: `message`, else the reply's)."""
    code = {429: RATE_LIMIT_EXCEEDED, 401: "invalid_api_key"}.get(http_status)
    return error_body(message or "%LOCAL_REPLY_BODY%", grpc_code, code)
