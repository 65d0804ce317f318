"""OpenAI's error body, {"error": {"message", "type", "param", "code"}}, as the OpenAI-compatible paths answer every
error: the llm service writes it for its own errors (in the HEADER trailer, which Envoy makes the response body), the
gateway for the replies Envoy makes itself on those paths. The `openai` client raises its exception class from the
HTTP status and shows the message; `type` and `code` say more."""
from google.rpc import code_pb2

HEADER = "x-openai-error"
# The services that answer in OpenAI's shape: the llm's OpenAI-compatible API and the trainer's files and
# fine-tuning API (the gateway serves them on /v1: gateway/openai_routes.py).
SERVICES = ("textgen.v1.OpenAiService", "textgen.v1.OpenAiStreamService", "textgen.v1.ResponsesService",
            "textgen.v1.ResponsesStreamService", "textgen.v1.FileService", "textgen.v1.FineTuningService")
# OpenAI's error codes that the service and the gateway answer with.
RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
MODEL_NOT_FOUND = "model_not_found"
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"  # a prompt the model's window cannot hold

_TYPES = {
    code_pb2.INVALID_ARGUMENT: "invalid_request_error",
    code_pb2.FAILED_PRECONDITION: "invalid_request_error",
    code_pb2.OUT_OF_RANGE: "invalid_request_error",
    code_pb2.NOT_FOUND: "invalid_request_error",
    code_pb2.ALREADY_EXISTS: "invalid_request_error",
    code_pb2.UNAUTHENTICATED: "authentication_error",
    code_pb2.PERMISSION_DENIED: "permission_error",
    code_pb2.RESOURCE_EXHAUSTED: "rate_limit_error",  # 429, and 413 (a body over the cap)
    code_pb2.DEADLINE_EXCEEDED: "timeout_error",
}


def error_body(message: str, grpc_code: int, code: str | None = None, param: str | None = None) -> dict:
    """The body for an error with this gRPC status code (the HTTP status is the code's, as Envoy maps it)."""
    return {"error": {"message": message, "type": _TYPES.get(grpc_code, "server_error"), "param": param,
                      "code": code}}
