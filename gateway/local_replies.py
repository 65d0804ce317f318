"""The bodies of the replies Envoy makes itself (a body over the cap, a rate limit, an unknown path, an upstream
gone...): a google.rpc.Status JSON body for a REST client, plain grpc-message text for a raw gRPC caller, and
OpenAI's error body on the OpenAI paths."""
from google.rpc import code_pb2

from gateway import openai_routes

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

# Only the rate limits make Envoy answer 429 itself; its own words for it are "local_rate_limited".
RATE_LIMITED = ("rate limited: this gateway takes no more of these requests for now; retry after the seconds in "
                "the retry-after header")
# Only the API key check (gateway/edge.py) answers 401 and 403 itself; its own words are "Client authentication
# failed." and "Client is forbidden.". The route's metadata names the scopes it takes.
NO_KEY = ("this call needs an API key this gateway knows: send 'Authorization: Bearer <key>' (none was sent, or "
          "the key is unknown)")
NOT_IN_SCOPE = "this API key may not make this call: that takes a key with one of the scopes %METADATA(ROUTE:textgen:scopes)%"
MESSAGES = {401: NO_KEY, 403: NOT_IN_SCOPE, 429: RATE_LIMITED}
NOT_ROUTED_FOR_GRPC = ("not served through the REST gateway: it routes only the methods with a REST binding; "
                       "call the service's own port for the others (reflection, health, ReloadAdapters)")


def _status_is(http: int) -> dict:
    return {"status_code_filter": {"comparison": {
        "op": "EQ", "value": {"default_value": http, "runtime_key": f"local_reply.code_{http}"}}}}


def local_reply_mappers() -> list[dict]:
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
        *(grpc_text_when(status, text) for status, text in MESSAGES.items()),
        {"filter": is_grpc, "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"}}},
    ]
    openai = [{"filter": {"and_filter": {"filters": [openai_routes.IS_OPENAI_REQUEST, _status_is(http)]}},
               "body_format_override": {"json_format": openai_routes.error_format(code, http, MESSAGES.get(http))}}
              for http, code in LOCAL_REPLY_CODES.items()]
    return grpc_text + openai + [
        {"filter": _status_is(http), "body_format_override": {"json_format": {
            "code": code, "message": MESSAGES.get(http, "%LOCAL_REPLY_BODY%")}}}
        for http, code in LOCAL_REPLY_CODES.items()]
