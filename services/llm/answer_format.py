"""The fixed answer format while tokens stream in: which text is safe to send yet, where the model closed the
answer with the suffix, and how the service completes an answer the model did not close."""
from services.common.prompts import SUFFIX, suffix_end
from services.llm.ending import Ending, begun_length

INCOMPLETE_UTF8 = "\ufffd"  # a byte-level token boundary inside a character decodes to this until it completes


def safe_length(body: str) -> int:
    """How much of `body` can be sent now without ever having to be taken back: text that might still become the
    suffix, trailing whitespace (the service may replace it) and half-decoded characters are held back."""
    end = len(body) - begun_length(body, SUFFIX)
    while end > 0 and (body[end - 1].isspace() or body[end - 1] == INCOMPLETE_UTF8):
        end -= 1
    return end


def complete(body: str) -> tuple[str, bool]:
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


# The native API's answers end just after the suffix.
ANSWER_FORMAT = Ending("suffix", suffix_end, safe_length, complete)
