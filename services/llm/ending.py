"""Where a generated text ends, and how much of it may stream before it has: each `Request` (services/llm/request.py)
carries one. The native API's answers end in the fixed answer format (services/llm/answer_format.py), the
OpenAI-compatible API's texts at the caller's stop strings (services/llm/stop_strings.py)."""
import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Ending:
    reason: str  # the request's stop_reason once the text has reached its end
    end: Callable[[str], int | None]  # where the text ends, once it has reached its end; else None
    safe_length: Callable[[str], int]  # how much of the text may be sent now without ever being taken back
    final: Callable[[str], tuple[str, bool]]  # the text as answered, and whether the service had to complete it


def begun_length(text: str, string: str) -> int:
    """How much of `string` the end of `text` has begun: the longest k < len(string) such that `text` ends with the
    first k characters of `string` (text that may still become it, so it is held back while streaming)."""
    for k in range(min(len(string) - 1, len(text)), 0, -1):
        if text.endswith(string[:k]):
            return k
    return 0
