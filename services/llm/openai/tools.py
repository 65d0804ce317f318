"""OpenAI's function tools on a chat: the request's tools and tool_choice read and checked, the grammar that holds an
answer to calls, and an answer's text read back as calls, whole or piece by piece as it streams.

Calls are written in one format whatever the model (the one Hermes-style ChatML models, Qwen2.5 and SmolLM3 write):

    <tool_call>
    {"name": "get_weather", "arguments": {"city":"Paris"}}
    </tool_call>

one block per call, several separated by a newline when parallel calls are allowed. With `required` or a named
function the grammar (llguidance's Lark, its arguments a JSON Schema) holds the whole answer to such blocks; with
`auto` it allows either that or text that does not start with "<". Either way the answer is text or valid calls:
of an answer cut short inside a call (max_tokens), the calls it finished, never the half call."""
import dataclasses
import json
import re
import uuid

import grpc
from google.protobuf import struct_pb2

from services.common.errors import Violations, shown
from services.common.openai_errors import OpenAiError
from services.llm.constraints import COMPACT, as_python, from_struct

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # OpenAI's rule for a function's name and a JSON Schema's
MAX_TOOLS = 64
OPEN, CLOSE = "<tool_call>\n", "\n</tool_call>"
CHOICES = ("none", "auto", "required")


@dataclasses.dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: dict  # the JSON Schema of its arguments


@dataclasses.dataclass(frozen=True)
class ToolUse:
    """What a request's tools ask of its answer: the functions the model is told of, which it may call, whether it
    must call one (`required` or a named function) and whether it may call several."""
    functions: tuple[Function, ...]
    callable: tuple[Function, ...]
    required: bool
    parallel: bool

    @property
    def offered(self) -> list[dict]:
        """The functions as OpenAI's tool objects (what a chat template with tools reads)."""
        return [{"type": "function", "function": {"name": f.name, "description": f.description,
                                                  "parameters": f.parameters}} for f in self.functions]


def check_name(name: str, field: str, violations: Violations) -> bool:
    """Whether `name` follows OpenAI's rule for names; a violation naming `field` when not."""
    if NAME.fullmatch(name):
        return True
    violations.add(field, f"{field} must be 1 to 64 letters, digits, '_' or '-' (got {shown(name)})")
    return False


def _functions(message, violations: Violations) -> tuple[Function, ...]:
    if len(message.tools) > MAX_TOOLS:
        violations.add("tools", f"tools must hold at most {MAX_TOOLS} functions (got {len(message.tools)})")
    functions = []
    for i, tool in enumerate(message.tools):
        field = f"tools[{i}]"
        if tool.type != "function":
            violations.add(f"{field}.type", f"{field}.type must be 'function' (got {shown(tool.type)})")
        name = tool.function.name
        if check_name(name, f"{field}.function.name", violations) and name in (f.name for f in functions):
            violations.add(f"{field}.function.name", f"{field}.function.name {name!r} is already a tool's name")
        parameters = from_struct(tool.function.parameters) if tool.function.HasField("parameters") else {
            "type": "object"}
        functions.append(Function(name, tool.function.description, parameters))
    return tuple(functions)


def _choice(value: struct_pb2.Value, violations: Violations) -> str | None:
    """"none", "auto", "required" or a function's name; None when unset."""
    kind = value.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    if kind == "string_value" and value.string_value in CHOICES:
        return value.string_value
    if kind == "struct_value":
        asked = as_python(value)
        name = asked.get("function", {}).get("name") if isinstance(asked.get("function"), dict) else None
        if asked.get("type") == "function" and isinstance(name, str):
            return name
    violations.add("tool_choice", "tool_choice must be 'none', 'auto', 'required' or "
                                  '{"type": "function", "function": {"name": ...}}')
    return None


def read_tools(message, violations: Violations) -> ToolUse | None:
    """The request's tools; None when it offers none or asks for no call (tool_choice "none")."""
    functions, choice = _functions(message, violations), _choice(message.tool_choice, violations)
    if choice is not None and not functions:
        violations.add("tool_choice", "tool_choice needs tools: the request offers no function to call")
        return None
    if not functions or choice == "none" or violations:  # a request with any violation is refused anyway
        return None
    if choice in (None, "auto", "required"):
        named = functions
    else:
        named = tuple(f for f in functions if f.name == choice)
        if not named:
            violations.add("tool_choice", f"tool_choice names {choice!r}, which is not one of the tools ("
                                          f"{', '.join(f.name for f in functions)})")
            return None
    parallel = message.parallel_tool_calls if message.HasField("parallel_tool_calls") else True
    return ToolUse(functions, named, required=choice not in (None, "auto"), parallel=parallel)


def _head(name: str) -> str:
    return '{"name": "' + name + '", "arguments": '


def call_block(name: str, arguments: str) -> str:
    """A call as the answer writes it (and as an earlier call is shown to the model)."""
    return OPEN + _head(name) + arguments + "}" + CLOSE


def _literal(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a Lark one


def grammar(use: ToolUse) -> str:
    """The Lark grammar an answer with these tools is held to."""
    calls = f"call ({_literal(chr(10))} call)*" if use.parallel else "call"
    lines = [f"start: {calls}"] if use.required else [f"start: TEXT | {calls}", r"TEXT: /[^<](.|\n)*/"]
    alternatives = " | ".join(f"call_{i}" for i in range(len(use.callable)))
    lines.append(f"call: {_literal(OPEN)} ({alternatives}) {_literal(CLOSE)}")
    for i, function in enumerate(use.callable):
        lines.append(f"call_{i}: {_literal(_head(function.name))} args_{i} {_literal('}')}")
        lines.append(f"args_{i}: %json {json.dumps({**function.parameters, 'x-guidance': COMPACT})}")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str  # JSON


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


# A call's opening up to its arguments, as _head writes it (tool_stream.py reads it from a stream).
HEAD = re.escape(OPEN) + r'\{"name": "(?P<name>[A-Za-z0-9_-]+)", "arguments": '
_CALL = re.compile(HEAD + r"(?P<arguments>.*)\}", re.DOTALL)


def read_calls(text: str) -> tuple[str | None, list[Call]]:
    """(content, calls) of a finished answer: its text and no calls, or no text and its calls. Of an answer cut short
    inside a call (max_tokens), the calls it finished; that call is dropped."""
    if not text.startswith("<"):
        return text, []
    *blocks, _ = text.split(CLOSE)  # what follows the last block is a call cut short, or nothing
    calls = []
    for i, block in enumerate(blocks):
        found = _CALL.fullmatch(block.removeprefix("\n") if i else block)
        if found is None or (i and not block.startswith("\n")):
            break
        try:
            json.loads(found["arguments"])
        except ValueError:
            break
        calls.append(Call(new_call_id(), found["name"], found["arguments"]))
    return None, calls


def refuse_with_json_output(use: ToolUse | None, schema: dict | None) -> None:
    if use is not None and schema is not None:
        raise OpenAiError(grpc.StatusCode.INVALID_ARGUMENT, "response_format cannot hold an answer that may call "
                          "tools: set tool_choice to 'none', or leave response_format out", param="response_format")
