"""The text of an OpenAI-compatible request, read and checked: a chat's messages (each a string or a list of text
parts; an assistant's tool calls and the tools' results among them) or a completion's prompt (a string, or a list
holding one), within the native API's bound on a context."""
import json

from google.protobuf import struct_pb2

from services.common.chat_prompt import PLAIN_ROLES
from services.common.errors import Violations, shown
from services.llm import planner
from services.llm.openai import tool_prompt, tools

ROLES = (*PLAIN_ROLES, "developer", "tool")  # a developer's message is read as the system's


def value_kind(value: struct_pb2.Value) -> str | None:
    return value.WhichOneof("kind")


def _text(value: struct_pb2.Value, field: str, violations: Violations) -> str:
    """A string, or a list of text parts ({"type": "text", "text": ...}) joined by newlines."""
    if value_kind(value) == "string_value":
        return value.string_value
    if value_kind(value) != "list_value":
        violations.add(field, f"{field} must be a string or a list of text parts")
        return ""
    texts = []
    for i, part in enumerate(value.list_value.values):
        kind, text = (part.struct_value.fields.get(name, struct_pb2.Value()) for name in ("type", "text"))
        if kind.string_value != "text" or value_kind(text) != "string_value":
            violations.add(f"{field}[{i}]", f'{field}[{i}] must be a text part, {{"type": "text", "text": "..."}}: '
                                            f"only text is served (got type {shown(kind.string_value)})")
        texts.append(text.string_value)
    return "\n".join(texts)


def _calls(entry, field: str, violations: Violations, call_ids: set[str]) -> list[str]:
    """An assistant message's tool calls as the blocks an answer writes; their ids join `call_ids`."""
    blocks = []
    for j, call in enumerate(entry.tool_calls):
        where = f"{field}.tool_calls[{j}]"
        tools.check_name(call.function.name, f"{where}.function.name", violations)
        try:
            arguments = json.dumps(json.loads(call.function.arguments), separators=(",", ":"))
        except ValueError:
            violations.add(f"{where}.function.arguments", f"{where}.function.arguments must be a JSON string")
            continue
        call_ids.add(call.id)
        blocks.append(tools.call_block(call.function.name, arguments))
    return blocks


def read_messages(message, violations: Violations) -> list[tuple[str, str]]:
    """The messages as (role, text) for the template: a developer's as the system's, an assistant's calls as the
    blocks an answer writes, a tool's result as the user's turn (consecutive results in one turn)."""
    if not message.messages:
        violations.add("messages", "messages must hold at least one message")
    read, call_ids, answering = [], set(), False
    for i, entry in enumerate(message.messages):
        field = f"messages[{i}]"
        if entry.role not in ROLES:
            violations.add(f"{field}.role", f"{field}.role must be one of {', '.join(map(repr, ROLES))} "
                                            f"(got {shown(entry.role)})")
        no_content = value_kind(entry.content) in (None, "null_value")
        # An assistant's turn may come without content (OpenAI's clients send null with tool calls).
        text = "" if entry.role == "assistant" and no_content else _text(entry.content, f"{field}.content", violations)
        if entry.tool_calls and entry.role != "assistant":
            violations.add(f"{field}.tool_calls", f"{field}.tool_calls: only an assistant's message makes calls")
        if entry.role == "tool":
            if entry.tool_call_id not in call_ids:
                violations.add(f"{field}.tool_call_id", f"{field}.tool_call_id must be the id of a call an earlier "
                                                        f"assistant message made (got {shown(entry.tool_call_id)})")
            if answering:
                read[-1] = ("user", f"{read[-1][1]}\n{tool_prompt.tool_response(text)}")
            else:
                read.append(("user", tool_prompt.tool_response(text)))
            answering = True
            continue
        if entry.role == "assistant" and entry.tool_calls:
            text = "\n".join([*([text] if text else []), *_calls(entry, field, violations, call_ids)])
        read.append(("system" if entry.role == "developer" else entry.role, text))
        answering = False
    check_length("messages", sum(len(text) for _, text in read), violations)
    return read


def read_prompt(message, violations: Violations) -> str:
    value = message.prompt
    if value_kind(value) == "list_value":
        values = value.list_value.values
        if len(values) != 1 or value_kind(values[0]) != "string_value":
            violations.add("prompt", "prompt must be a string or a list holding one string: one prompt per request, "
                                     f"token ids not accepted (got a list of {len(values)})")
            return ""
        value = values[0]
    if value_kind(value) not in (None, "null_value", "string_value"):
        violations.add("prompt", "prompt must be a string")
        return ""
    check_length("prompt", len(value.string_value), violations)
    return value.string_value


def check_length(field: str, characters: int, violations: Violations) -> None:
    if characters > planner.MAX_CONTEXT_CHARS:
        violations.add(field, f"{field} must hold at most {planner.MAX_CONTEXT_CHARS} characters (got {characters})")
