"""Where a generated text ends, and how much of it may stream before it has: each `Request` (services/llm/request.py)
carries one `Ending`. The native API's answers end in the fixed answer format (`ANSWER_FORMAT`): just after the
suffix, which the service completes when the model did not close the answer. The OpenAI-compatible API's texts end
where the first of the caller's stop strings begins (`stop_at`), and none of a stop string is ever sent. Either way,
text that may still become the end is held back while streaming, and so are half-decoded characters."""
import dataclasses
from collections.abc import Callable

from services.common.prompts import SUFFIX, suffix_end
from services.llm.states import StopReason

INCOMPLETE_UTF8 = "\ufffd"  # a byte-level token boundary inside a character decodes to this until it completes


@dataclasses.dataclass(frozen=True)
class Ending:
    reason: StopReason  # the request's stop_reason once the text has reached its end
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


def _answer_safe_length(body: str) -> int:
    """Text that might still become the suffix, trailing whitespace (the service may replace it) and half-decoded
    characters are held back."""
    end = len(body) - begun_length(body, SUFFIX)
    while end > 0 and (body[end - 1].isspace() or body[end - 1] == INCOMPLETE_UTF8):
        end -= 1
    return end


def _complete_answer(body: str) -> tuple[str, bool]:
    """The answer body closed with the suffix, and whether the service had to add (part of) it."""
    cut = suffix_end(body)
    if cut is not None:
        return body[:cut], False
    body = body.rstrip(INCOMPLETE_UTF8)
    partial = begun_length(body, SUFFIX)
    # The model stopped inside the suffix ("... Let me know if"): finish it rather than starting it again.
    if partial and (partial == len(body) or body[-partial - 1].isspace()):
        return body + SUFFIX[partial:], True
    body = body.rstrip()
    return (f"{body} {SUFFIX}" if body else f" {SUFFIX}"), True


ANSWER_FORMAT = Ending(StopReason.SUFFIX, suffix_end, _answer_safe_length, _complete_answer)


def stop_at(strings: tuple[str, ...]) -> Ending:
    """The ending for these stop strings (none: the text ends only at the end-of-text token or the token budget)."""

    def end(text: str) -> int | None:
        found = [index for string in strings if (index := text.find(string)) >= 0]
        return min(found) if found else None

    def safe_length(text: str) -> int:
        safe = len(text) - max((begun_length(text, string) for string in strings), default=0)
        while safe > 0 and text[safe - 1] == INCOMPLETE_UTF8:
            safe -= 1
        return safe

    def final(text: str) -> tuple[str, bool]:
        return text.rstrip(INCOMPLETE_UTF8), False

    return Ending(StopReason.STOP, end, safe_length, final)
