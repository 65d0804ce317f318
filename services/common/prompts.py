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


def strip_format(text: str) -> str:
    """The answer with the fixed prefix and suffix removed (for scoring)."""
    text = text.strip()
    if text.startswith(PREFIX):
        text = text[len(PREFIX):]
    if text.endswith(SUFFIX):
        text = text[: -len(SUFFIX)]
    return text.strip()
