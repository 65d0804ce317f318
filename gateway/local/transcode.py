"""JSON <-> protobuf for one route, and gRPC status -> HTTP, as Envoy's grpc_json_transcoder does them."""
import json

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import code_pb2, error_details_pb2, status_pb2  # noqa: F401  (registers the detail types)

from gateway.local.routes import Route

# CONTRACT.md's table.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class TranscodeError(Exception):
    """A request the gateway refuses before any backend sees it."""

    def __init__(self, http_status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message

    def body(self) -> bytes:
        return status_json(status_pb2.Status(code=self.code, message=self.message))


def status_json(status: status_pb2.Status) -> bytes:
    try:
        return json.dumps(json_format.MessageToDict(status, preserving_proto_field_name=True)).encode()
    except (TypeError, KeyError, json_format.Error):  # a detail of a type this gateway does not know
        return json.dumps({"code": status.code, "message": status.message, "details": []}).encode()


def error_from_rpc(error: grpc.RpcError) -> tuple[int, bytes]:
    """The HTTP status and google.rpc.Status body for a failed call, details included when the backend sent them."""
    code = error.code()
    status = None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
    if status is None:
        status = status_pb2.Status(code=code.value[0], message=error.details() or "")
    return HTTP_STATUS.get(code, 500), status_json(status)


def message_json(message) -> bytes:
    return json.dumps(
        json_format.MessageToDict(message, preserving_proto_field_name=True,
                                  always_print_fields_with_no_presence=True),
        separators=(",", ":"),
    ).encode()


def _field(descriptor, path: str) -> FieldDescriptor | None:
    field = None
    for part in path.split("."):
        if descriptor is None:
            return None
        field = descriptor.fields_by_name.get(part)
        if field is None:
            return None
        descriptor = field.message_type
    return field


def _query_value(field: FieldDescriptor, raw: str, name: str):
    try:
        if field.type == FieldDescriptor.TYPE_BOOL:
            if raw not in ("true", "false"):
                raise ValueError
            return raw == "true"
        if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                              FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
            return int(raw)
        if field.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
            return float(raw)
        return raw
    except ValueError:
        raise TranscodeError(400, code_pb2.INVALID_ARGUMENT, f"query parameter {name}={raw!r} is not a valid "
                             f"{FieldDescriptor.Type.Name(field.type)[5:].lower()}") from None


def _set_path(target: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def build_request(route: Route, body: bytes, path_values: dict[str, str], query: list[tuple[str, str]]):
    """The request message from the JSON body (per the rule's `body`), the path variables and the query string."""
    fields: dict = {}
    if route.body and body.strip():
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TranscodeError(400, code_pb2.INVALID_ARGUMENT, f"malformed JSON body: {error}") from None
        if route.body == "*":
            if not isinstance(parsed, dict):
                raise TranscodeError(400, code_pb2.INVALID_ARGUMENT, "the JSON body must be an object")
            fields = parsed
        else:
            fields = {route.body: parsed}
    for name, value in query:
        field = None if route.body == "*" else _field(route.request_descriptor, name)
        if field is None or name in path_values or (route.body and name.split(".")[0] == route.body):
            raise TranscodeError(400, code_pb2.INVALID_ARGUMENT, f"unknown query parameter {name!r}")
        value = _query_value(field, value, name)
        if field.is_repeated:
            fields.setdefault(name, []).append(value)
        else:
            _set_path(fields, name, value)
    for name, value in path_values.items():
        _set_path(fields, name, value)
    request = route.request_class()
    try:
        # Envoy drops unknown body fields silently; so does this gateway.
        json_format.ParseDict(fields, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise TranscodeError(400, code_pb2.INVALID_ARGUMENT, f"invalid request body: {error}") from None
    return request
