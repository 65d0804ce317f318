"""A Responses API request as the chat completion it is served as: the instructions as a system message, then the
stored conversation of `previous_response_id`, then `input` (a string, or items: messages, the function calls of an
earlier output and their function_call_output results) as chat messages; flat function tools as chat's; text.format
as response_format; max_output_tokens as max_completion_tokens. A chat error's fields are named back in the
Responses API's words (messages[3] -> input[1], max_completion_tokens -> max_output_tokens ...)."""
import dataclasses
import json
import re

import grpc
from google.protobuf import json_format
from textgen.v1 import openai_pb2

from services.common.errors import Violations, shown
from services.common.openai_errors import OpenAiError
from services.llm.constraints import as_python, from_struct

ROLES = ("user", "system", "developer", "assistant")
TEXT_PARTS = ("input_text", "output_text", "text")
_RENAMED = [(re.compile(r"\bmax_completion_tokens\b"), "max_output_tokens"),
            (re.compile(r"\bresponse_format\.json_schema\.(schema|name)\b"), r"text.format.\1"),
            (re.compile(r"\bresponse_format(\.type)?\b"), r"text.format\1"),
            (re.compile(r"\btools\[(\d+)\]\.function\."), r"tools[\1].")]


@dataclasses.dataclass(frozen=True)
class Translated:
    chat: openai_pb2.ChatCompletionRequest
    conversation: list[dict]  # the chat messages after the instructions (stored with the output)
    where: list[str]  # each chat message's origin in the request: "instructions", "previous_response_id", "input[i]"

    def renamed(self, error: OpenAiError) -> OpenAiError:
        """`error` (the chat completion's) naming the Responses API's fields."""
        def rename(text: str) -> str:
            text = re.sub(r"\bmessages\[(\d+)\]", lambda found: self.where[int(found[1])], text)
            text = re.sub(r"\bmessages\b", "input", text)
            for pattern, replacement in _RENAMED:
                text = pattern.sub(replacement, text)
            return text

        message, param = rename(str(error)), rename(error.param) if error.param else None
        if error.status != grpc.StatusCode.INVALID_ARGUMENT or param is None:
            return OpenAiError(error.status, message, param, error.code)
        violations = Violations()
        violations.add(param, message)
        status = violations.status()
        return OpenAiError(status.code, message, param, error.code, status.trailing_metadata)


def _content(content, field: str, violations: Violations):
    """A message's content: a string, or text parts (input_text, output_text) as chat's text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        violations.add(field, f"{field} must be a string or a list of input_text parts")
        return ""
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else None
            violations.add(f"{field}[{j}]", f"{field}[{j}] must be an input_text part, {{\"type\": \"input_text\", "
                                            f"\"text\": ...}}: only text is served (got type {shown(str(kind))})")
            continue
        parts.append({"type": "text", "text": part["text"]})
    return parts


def _item(item, field: str, messages: list[dict], violations: Violations) -> bool:
    """Adds `item` to `messages` as a chat message (a function call joins the assistant message before it); False
    when it is no input item."""
    if not isinstance(item, dict):
        return False
    kind = item.get("type", "message")
    if kind == "message" and item.get("role") in ROLES:
        messages.append({"role": item["role"], "content": _content(item.get("content"), f"{field}.content",
                                                                   violations)})
    elif kind == "function_call":
        call = {"id": str(item.get("call_id", "")), "type": "function", "function": {
            "name": str(item.get("name", "")), "arguments": str(item.get("arguments", ""))}}
        if messages and messages[-1].get("tool_calls") and messages[-1]["role"] == "assistant":
            messages[-1]["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output", "")
        messages.append({"role": "tool", "tool_call_id": str(item.get("call_id", "")),
                         "content": output if isinstance(output, str) else json.dumps(output)})
    else:
        return False
    return True


def input_messages(request, violations: Violations) -> tuple[list[dict], list[str]]:
    """`input` as chat messages, and each one's origin ("input" or "input[i]")."""
    kind = request.input.WhichOneof("kind")
    if kind == "string_value":
        return [{"role": "user", "content": request.input.string_value}], ["input"]
    if kind != "list_value":
        violations.add("input", "input is required: a string, or a list of input items")
        return [], []
    messages, where = [], []
    for i, item in enumerate(as_python(request.input)):
        before = len(messages)
        if not _item(item, f"input[{i}]", messages, violations):
            violations.add(f"input[{i}]", f"input[{i}] must be a message ({{\"role\": one of {', '.join(ROLES)}, "
                                          "\"content\"}), a function_call or a function_call_output item")
        where += [f"input[{i}]"] * (len(messages) - before)
    return messages, where


def _tool_choice(value) -> object:
    """Responses' {"type": "function", "name": ...} as chat's {"type": "function", "function": {"name": ...}}."""
    choice = as_python(value)
    if isinstance(choice, dict) and choice.get("type") == "function" and "name" in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice


def _response_format(text_format) -> dict | None:
    if text_format.type in ("", "text"):
        return None
    if text_format.type != "json_schema":
        return {"type": text_format.type}  # json_object; anything else is refused by the chat's check, named back
    schema = from_struct(text_format.schema) if text_format.HasField("schema") else {}
    return {"type": "json_schema", "json_schema": {"name": text_format.name, "schema": schema}}


def translate(request, previous: list[dict], streamed: bool) -> Translated:
    """The chat completion `request` is served as, after the `previous` conversation."""
    violations = Violations()
    messages, where = input_messages(request, violations)
    if request.include:
        violations.add("include", f"include: no extra output is served (got {shown(', '.join(request.include))}); "
                                  "leave it out or empty")
    if request.truncation not in ("", "disabled"):
        violations.add("truncation", f"truncation must be 'disabled' (got {shown(request.truncation)}): an input "
                                     "the model's window cannot hold is refused, not cut")
    if violations:
        raise OpenAiError.invalid(violations)
    instructions = [{"role": "system", "content": request.instructions}] if request.instructions else []
    body = {"model": request.model, "messages": [*instructions, *previous, *messages], "stream": streamed}
    if request.HasField("max_output_tokens"):
        body["max_completion_tokens"] = request.max_output_tokens
    body |= {name: getattr(request, name) for name in ("temperature", "top_p", "parallel_tool_calls")
             if request.HasField(name)}
    if request.tools:
        body["tools"] = [{"type": tool.type, "function": {"name": tool.name, "description": tool.description, **(
            {"parameters": from_struct(tool.parameters)} if tool.HasField("parameters") else {})}}
            for tool in request.tools]
    if (choice := _tool_choice(request.tool_choice)) is not None:
        body["tool_choice"] = choice
    if (response_format := _response_format(request.text.format)) is not None:
        body["response_format"] = response_format
    try:
        chat = json_format.ParseDict(body, openai_pb2.ChatCompletionRequest())
    except json_format.ParseError as error:
        raise OpenAiError(grpc.StatusCode.INVALID_ARGUMENT, f"the request holds a value it cannot be served with: "
                          f"{error}", param="input") from None
    return Translated(chat, [*previous, *messages],
                      ["instructions"] * len(instructions) + ["previous_response_id"] * len(previous) + where)
