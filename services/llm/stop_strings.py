"""OpenAI's `stop`: the text ends where the first of the caller's stop strings begins, and none of a stop string is
ever sent, so text that may still become one is held back while streaming."""
from services.llm.answer_format import INCOMPLETE_UTF8
from services.llm.ending import Ending, begun_length


def stop_at(strings: tuple[str, ...]) -> Ending:
    """The ending for these stop strings (none: the text ends only at the end-of-text token or the token budget)."""

    def end(text: str) -> int | None:
        found = [index for string in strings if (index := text.find(string)) >= 0]
        return min(found) if found else None

    def safe_length(text: str) -> int:
        held = max((begun_length(text, string) for string in strings), default=0)
        safe = len(text) - held
        while safe > 0 and text[safe - 1] == INCOMPLETE_UTF8:
            safe -= 1
        return safe

    def final(text: str) -> tuple[str, bool]:
        return text.rstrip(INCOMPLETE_UTF8), False

    return Ending("stop", end, safe_length, final)
