"""How the OpenAI-shaped services fail (the llm's OpenAI-compatible API, the trainer's files and fine-tuning API): a
gRPC status like any service's (INVALID_ARGUMENT with field violations, NOT_FOUND, RESOURCE_EXHAUSTED ...), which
also carries OpenAI's error body in a trailer for the gateway to answer with (textgen/openai_error_body.py)."""
import contextlib
import json

import grpc

from services.common.errors import Violations
from textgen.openai_error_body import HEADER, error_body


class OpenAiError(Exception):
    def __init__(self, status: grpc.StatusCode, message: str, param: str | None = None, code: str | None = None,
                 metadata: tuple = ()) -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.metadata = status, param, code, metadata

    @classmethod
    def invalid(cls, violations: Violations) -> "OpenAiError":
        """Bad input: every violation in the message and the status details, the first field as OpenAI's param."""
        status = violations.status()
        return cls(status.code, status.details, param=violations.fields[0], metadata=status.trailing_metadata)

    async def abort(self, context: grpc.aio.ServicerContext) -> None:
        # json.dumps escapes every non-ASCII character, as a metadata value must be ASCII.
        body = json.dumps(error_body(str(self), self.status.value[0], self.code, self.param))
        await context.abort(self.status, str(self), trailing_metadata=(*self.metadata, (HEADER, body)))


@contextlib.asynccontextmanager
async def aborting(context: grpc.aio.ServicerContext):
    """Ends the call with the OpenAI error raised inside."""
    try:
        yield
    except OpenAiError as error:
        await error.abort(context)


def invalid(message: str, param: str | None = None, code: str | None = None) -> OpenAiError:
    """Bad input: 400 naming `param`."""
    return OpenAiError(grpc.StatusCode.INVALID_ARGUMENT, message, param=param, code=code)


def not_found(message: str, param: str | None = None, code: str | None = None) -> OpenAiError:
    return OpenAiError(grpc.StatusCode.NOT_FOUND, message, param=param, code=code)
