"""OpenAI's reinforcement format, one prompt a line: `{"messages": [...], "<field>": ..., ...}`, the messages ending
with the user's (the model answers it), and any other fields the references a grader reads as {{item.<field>}}.
Free of heavy imports."""
import dataclasses
import pathlib

from services.trainer.training.chat_format import message_problem
from services.trainer.training.jsonl import values

PROMPT_MESSAGE_KEYS = ("role", "content", "name")


@dataclasses.dataclass(frozen=True)
class Prompt:
    messages: list[tuple[str, str]]  # (role, content)
    item: dict  # the whole line, as graders read it


def example_problem(value) -> str | None:
    """What is wrong with one parsed line, or None."""
    if not isinstance(value, dict) or "messages" not in value:
        return ("messages is missing: a reinforcement example holds the prompt's messages and the fields its grader "
                "reads")
    messages = value["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for index, message in enumerate(messages):
        if (problem := message_problem(f"messages[{index}]", message, PROMPT_MESSAGE_KEYS)) is not None:
            return problem
    if messages[-1]["role"] != "user":
        return "the last message must be the user's: the model's sampled answers reply to it"
    return None


def read_prompts(path: pathlib.Path) -> list[Prompt]:
    """The prompts of a file `example_problem` passed."""
    return [Prompt([(m["role"], m["content"]) for m in value["messages"]], value) for value in values(path)]
