"""How the OpenAI-compatible services fail: a gRPC status like any service's (INVALID_ARGUMENT with field
violations, NOT_FOUND, RESOURCE_EXHAUSTED ...), which also carries OpenAI's error body in a trailer for the gateway
to answer with (textgen/openai_error_body.py)."""
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
