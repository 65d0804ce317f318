"""OpenAI's chat fine-tuning format, checked the way OpenAI reports it: JSONL in UTF-8, one example a line,
`{"messages": [{"role": "system"|"user"|"assistant", "content": "...", "weight": 0|1 (assistant only)}, ...]}`,
each with at least one assistant message to learn from; at least MIN_EXAMPLES of them. A problem names its line and
key (`line 7: messages[2].role must be one of system, user, assistant`). Free of heavy imports: the trainer's server
checks each upload with it, and a job reads its examples with it."""
import dataclasses
import json
import pathlib

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")
MIN_EXAMPLES = 10
SHOWN_PROBLEMS = 10


@dataclasses.dataclass(frozen=True)
class Message:
    role: str
    content: str
    trained: bool  # an assistant message whose weight is 1 (the default): its tokens carry the loss


@dataclasses.dataclass
class Checked:
    examples: int
    problems: list[str]  # the first SHOWN_PROBLEMS
    more_problems: int  # beyond those

    def summary(self) -> str:
        more = f" (and {self.more_problems} more)" if self.more_problems else ""
        return "; ".join(self.problems) + more


def _message_problem(index: int, message) -> str | None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        return f"{where} must be an object with role and content"
    unknown = sorted(set(message) - set(MESSAGE_KEYS))
    if unknown:
        return f"{where} has an unknown key {unknown[0]!r} (a message takes {', '.join(MESSAGE_KEYS)})"
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
        if (problem := _message_problem(index, message)) is not None:
            return problem
    assistants = [m for m in messages if m["role"] == "assistant"]
    if not assistants:
        return "messages has no assistant message to learn from"
    if all(m.get("weight", 1) == 0 for m in assistants):
        return "every assistant message has weight 0: nothing to learn from"
    return None


def _parsed(number: int, raw: bytes) -> tuple[object, str | None]:
    """(the line's JSON value, None) or (None, its problem)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"line {number}: not UTF-8 (byte {raw[error.start]:#04x} at byte {error.start + 1} of the line)"
    try:
        return json.loads(text), None
    except ValueError as error:
        return None, f"line {number}: not JSON ({error})"


def _lines(path: pathlib.Path):
    """(line number, bytes) of each line that is not blank."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            if raw.strip():
                yield number, raw


def check_file(path: pathlib.Path) -> Checked:
    """Reads the file a line at a time (its size bounds nothing but the time taken)."""
    examples, problems = 0, []
    for number, raw in _lines(path):
        value, problem = _parsed(number, raw)
        if problem is None and (wrong := example_problem(value)) is not None:
            problem = f"line {number}: {wrong}"
        if problem is None:
            examples += 1
        else:
            problems.append(problem)
    if examples + len(problems) == 0:
        problems.append("the file is empty: it needs one chat example a line")
    elif not problems and examples < MIN_EXAMPLES:
        problems.append(f"the file holds {examples} examples; fine-tuning needs at least {MIN_EXAMPLES}")
    return Checked(examples, problems[:SHOWN_PROBLEMS], max(0, len(problems) - SHOWN_PROBLEMS))


def read_examples(path: pathlib.Path) -> list[list[Message]]:
    """The examples of a file `check_file` passed."""
    examples = []
    for _, raw in _lines(path):
        examples.append([Message(m["role"], m["content"], m["role"] == "assistant" and m.get("weight", 1) == 1)
                         for m in json.loads(raw)["messages"]])
    return examples
