"""OpenAI's preference format (a dpo job's), one pair a line: `{"input": {"messages": [...]}, "preferred_output":
[{"role": "assistant", "content": "..."}], "non_preferred_output": [...]}`, the input's messages ending with the
user's, each output one assistant message. Free of heavy imports."""
import dataclasses
import pathlib

from services.trainer.training.chat_format import message_problem
from services.trainer.training.jsonl import values

KEYS = ("input", "preferred_output", "non_preferred_output")
OUTPUTS = KEYS[1:]
HOLDS = "a dpo example holds input.messages, preferred_output and non_preferred_output"
PROMPT_MESSAGE_KEYS = ("role", "content", "name")


def _output_problem(key: str, output) -> str | None:
    if not isinstance(output, list) or len(output) != 1:
        return f"{key} must be a list of one assistant message"
    problem = message_problem(f"{key}[0]", output[0], PROMPT_MESSAGE_KEYS)
    if problem is None and output[0]["role"] != "assistant":
        problem = f"{key}[0].role must be assistant"
    return problem


def example_problem(value) -> str | None:
    """What is wrong with one parsed line, or None. Missing keys are named before unknown ones, so a supervised file
    given to a dpo job is told what a pair lacks."""
    if not isinstance(value, dict):
        return f"must be a JSON object: {HOLDS}"
    missing = [key for key in KEYS if key not in value]
    if missing:
        named = " and ".join(missing) + (" are" if len(missing) > 1 else " is")
        chat = " (the line is a chat example, a supervised job's)" if "messages" in value else ""
        return f"{named} missing{chat}: {HOLDS}"
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        return f"has an unknown key {unknown[0]!r} ({HOLDS})"
    given = value["input"]
    if not isinstance(given, dict) or set(given) != {"messages"}:
        return "input must be an object holding messages (only)"
    messages = given["messages"]
    if not isinstance(messages, list) or not messages:
        return "input.messages must be a non-empty list"
    for index, message in enumerate(messages):
        if (problem := message_problem(f"input.messages[{index}]", message, PROMPT_MESSAGE_KEYS)) is not None:
            return problem
    if messages[-1]["role"] != "user":
        return "input.messages must end with a user message: the outputs answer it"
    for key in OUTPUTS:
        if (problem := _output_problem(key, value[key])) is not None:
            return problem
    if value["preferred_output"][0]["content"] == value["non_preferred_output"][0]["content"]:
        return "preferred_output and non_preferred_output are the same: nothing to prefer"
    return None


@dataclasses.dataclass(frozen=True)
class Pair:
    prompt: list[tuple[str, str]]  # (role, content) of the input's messages
    preferred: str
    rejected: str


def read_pairs(path: pathlib.Path) -> list[Pair]:
    """The pairs of a file `example_problem` passed."""
    return [Pair([(m["role"], m["content"]) for m in value["input"]["messages"]],
                 value["preferred_output"][0]["content"], value["non_preferred_output"][0]["content"])
            for value in values(path)]
