"""The answer format and the QA prompt: one definition shared by the llm service and the trainer."""

PREFIX = "That is a great question."
SUFFIX = "Let me know if you have any other questions."


def qa_prompt(question: str, context: str = "") -> str:
    """The prompt SFT trains on and the llm service serves. It ends without a trailing space; the completion
    (see `qa_completion`) starts with one."""
    question = " ".join(question.split())
    context = " ".join(context.split())
    if context:
        return f"Context: {context}\nQuestion: {question}\nAnswer:"
    return f"Question: {question}\nAnswer:"


def qa_completion(answer: str) -> str:
    return f" {PREFIX} {' '.join(answer.split())} {SUFFIX}"


def suffix_end(text: str) -> int | None:
    """Where the model's text ends: just after its first complete suffix; None when it has none."""
    index = text.find(SUFFIX)
    return None if index < 0 else index + len(SUFFIX)


def until_suffix(text: str) -> str:
    """`text` up to the end of its first suffix; all of it when it has none."""
    cut = suffix_end(text)
    return text if cut is None else text[:cut]


def strip_format(text: str) -> str:
    """The answer with the fixed prefix and suffix removed (for scoring)."""
    text = text.strip()
    if text.startswith(PREFIX):
        text = text[len(PREFIX):]
    if text.endswith(SUFFIX):
        text = text[: -len(SUFFIX)]
    return text.strip()


def fit_context(question: str, context: str, fits) -> str | None:
    """The longest tail of `context` (whole words, the ones nearest the question) for which
    `fits(qa_prompt(question, tail))` holds; the context itself when it fits, None when not even the bare
    question does. `fits` is the caller's test, e.g. a token count against the model's window."""
    if fits(qa_prompt(question, context)):
        return context
    if not fits(qa_prompt(question, "")):
        return None
    words = context.split()
    low, high = 0, len(words)  # keeping `low` words fits; keeping `high` does not
    while high - low > 1:
        middle = (low + high) // 2
        if fits(qa_prompt(question, " ".join(words[-middle:]))):
            low = middle
        else:
            high = middle
    return " ".join(words[-low:]) if low else ""
