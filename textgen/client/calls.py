"""How the client's calls fail and are made: every failure a TextgenError carrying the gRPC code, the service's
message and the field violations of a google.rpc.BadRequest."""
from collections.abc import Iterator

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class TextgenError(Exception):
    """A call that failed: the gRPC code, the service's message and, for bad input, each field named."""

    def __init__(self, code: grpc.StatusCode, message: str, field_violations: list[tuple[str, str]],
                 service: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.field_violations, self.service = code, message, field_violations, service

    @classmethod
    def from_rpc(cls, error: grpc.RpcError, service: str = "") -> "TextgenError":
        violations = []
        status = rpc_status.from_call(error)
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations += [(v.field, v.description) for v in bad_request.field_violations]
        return cls(error.code(), error.details() or "", violations, service)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def call(service: str, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except grpc.RpcError as error:
        raise TextgenError.from_rpc(error, service) from None


def streamed(service: str, stream) -> Iterator:
    try:
        yield from stream
    except grpc.RpcError as error:
        raise TextgenError.from_rpc(error, service) from None
    finally:
        stream.cancel()


def given(**fields) -> dict:
    """The fields that were given: an unset optional field takes the service's documented default."""
    return {name: value for name, value in fields.items() if value is not None}
