"""A request the service cannot decode is the caller's problem, answered as such: INVALID_ARGUMENT (HTTP 400) saying
why, never gRPC's UNKNOWN (500). Envoy's transcoder writes what its JSON parser takes, which may nest deeper than
protobuf's decoder goes (about 100 message levels: a JSON list nested 50 deep in a google.protobuf.Value field).
On the OpenAI-shaped services the answer carries OpenAI's error body too (services/common/openai_errors.py)."""
import grpc
from google.protobuf.message import DecodeError

from services.common.openai_errors import OpenAiError
from textgen.openai_error_body import SERVICES as OPENAI_SHAPED


class _Undecodable:
    """What a request that failed to decode becomes, for the handler to refuse."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _tolerant(deserialize):
    def parse(data: bytes):
        try:
            return deserialize(data)
        except DecodeError as error:
            return _Undecodable(error)
    return parse


async def _refuse(method: str, request: _Undecodable, context) -> None:
    message = (f"the request could not be decoded ({request.error}): JSON nested too deeply, or bytes that are not "
               "this call's request")
    if method.split("/")[1] in OPENAI_SHAPED:
        await OpenAiError(grpc.StatusCode.INVALID_ARGUMENT, message).abort(context)
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


class UndecodableRequests(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        handler = handler._replace(request_deserializer=_tolerant(handler.request_deserializer))
        if handler.unary_unary:
            inner_unary = handler.unary_unary

            async def unary_unary(request, context):
                if isinstance(request, _Undecodable):
                    await _refuse(method, request, context)
                return await inner_unary(request, context)

            return handler._replace(unary_unary=unary_unary)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def unary_stream(request, context):
                if isinstance(request, _Undecodable):
                    await _refuse(method, request, context)
                async for message in inner_stream(request, context):
                    yield message

            return handler._replace(unary_stream=unary_stream)
        if handler.stream_unary:
            inner_upload = handler.stream_unary

            async def stream_unary(requests, context):
                async def checked():
                    async for request in requests:
                        if isinstance(request, _Undecodable):
                            await _refuse(method, request, context)
                        yield request

                return await inner_upload(checked(), context)

            return handler._replace(stream_unary=stream_unary)
        return handler
