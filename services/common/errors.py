"""Turning bad input into INVALID_ARGUMENT with google.rpc.BadRequest field violations."""
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class Violations:
    """Collects field violations; `abort_if_any` ends the call with all of them at once.

        violations = Violations()
        violations.add("start_word", "start_word must be a single word")
        violations.add_all(out_of_range(params))     # the request's limits (services.common.limits)
        await violations.abort_if_any(context)
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self._items.append((field, description))

    def add_all(self, violations: list[tuple[str, str]]) -> None:
        self._items.extend(violations)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self._items]

    def status(self) -> grpc.Status:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in self._items
                ]
            )
        )
        message = "; ".join(d for _, d in self._items)
        return rpc_status.to_status(
            status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
        )

    async def abort_if_any(self, context: grpc.aio.ServicerContext) -> None:
        if self._items:
            await context.abort_with_status(self.status())


def shown(value: str, limit: int = 60) -> str:
    """`value` as quoted in an error message, cut to `limit` characters: a status message travels in a header,
    and a client's megabyte of input echoed back would exceed the header limit (RESOURCE_EXHAUSTED, not the error)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def first_line(error: BaseException | str, limit: int = 300) -> str:
    """An exception (or a library's error text) as one line of a message: its first line (some libraries' run to
    pages), cut to `limit`."""
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else "" if isinstance(error, str) else type(error).__name__)[:limit]


MAX_START_WORD_CHARS = 100


def check_start_word(violations: Violations, value: str, field: str = "start_word") -> None:
    """The rule the word-level generators share: present, not blank, at most 100 characters."""
    if not value.strip():
        violations.add(field, f"{field} is required and must not be blank")
    elif len(value) > MAX_START_WORD_CHARS:
        violations.add(field, f"{field} must be at most {MAX_START_WORD_CHARS} characters (got {len(value)})")
