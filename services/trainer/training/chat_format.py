"""OpenAI's chat fine-tuning format (a supervised job's), one example a line, `{"messages": [{"role": "system"|"user"|
"assistant", "content": "...", "weight": 0|1 (assistant only)}, ...]}`, each with at least one assistant message to
learn from. A problem names its key (`messages[2].role must be one of system, user, assistant`); file_formats.py
adds the line. Free of heavy imports: the trainer's server checks each upload with it, and a job reads its examples
with it."""
import dataclasses
import json
import pathlib

from services.trainer.training.jsonl import lines

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")


@dataclasses.dataclass(frozen=True)
class Message:
    role: str
    content: str
    trained: bool  # an assistant message whose weight is 1 (the default): its tokens carry the loss


def message_problem(where: str, message, keys=MESSAGE_KEYS) -> str | None:
    """What is wrong with one message (`where` names it, e.g. messages[2]), or None."""
    if not isinstance(message, dict):
        return f"{where} must be an object with role and content"
    unknown = sorted(set(message) - set(keys))
    if unknown:
        return f"{where} has an unknown key {unknown[0]!r} (a message takes {', '.join(keys)})"
    if message.get("role") not in ROLES:
        return f"{where}.role must be one of {', '.join(ROLES)}"
    if not isinstance(message.get("content"), str):
        return f"{where}.content must be a string"
    if "name" in message and not isinstance(message["name"], str):
        return f"{where}.name must be a string"
    if "weight" in message:
        if message["role"] != "assistant":
            return f"{where}.weight is allowed on assistant messages only"
        if message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
            return f"{where}.weight must be 0 or 1"
    return None


def example_problem(value) -> str | None:
    """What is wrong with one parsed line, or None."""
    if not isinstance(value, dict):
        return "must be a JSON object with a messages list"
    unknown = sorted(set(value) - {"messages"})
    if unknown:
        return f"has an unknown key {unknown[0]!r} (a chat example holds messages)"
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for index, message in enumerate(messages):
        if (problem := message_problem(f"messages[{index}]", message)) is not None:
            return problem
    assistants = [m for m in messages if m["role"] == "assistant"]
    if not assistants:
        return "messages has no assistant message to learn from"
    if all(m.get("weight", 1) == 0 for m in assistants):
        return "every assistant message has weight 0: nothing to learn from"
    return None


def read_examples(path: pathlib.Path) -> list[list[Message]]:
    """The examples of a file `check_file` passed."""
    examples = []
    for _, raw in lines(path):
        examples.append([Message(m["role"], m["content"], m["role"] == "assistant" and m.get("weight", 1) == 1)
                         for m in json.loads(raw)["messages"]])
    return examples
