"""From an OpenAI-compatible request to the `Plan` the engine decodes. `check_chat` and `check_completion` read
and check the request's fields (the native API's ranges, LlmParams', for what both have); `plan_chat` and
`plan_completion` run on the planner's thread (services/llm/planner.py's Planner.run) and tokenize: the messages
through the model's chat template (services/common/chat_prompt.py), or, for an adapter asked in the QA form, the
native planner's QA request with its answer format. Every error is an OpenAiError."""
import dataclasses
from typing import Annotated

import grpc
from google.protobuf import struct_pb2

from services.common.errors import Violations, shown
from services.common.limits import Bound, bounds, from_request, out_of_range
from services.llm import planner
from services.llm.constraints import JSON_OBJECT, SchemaRefused, from_struct, grammars_for
from services.llm.endings import stop_at
from services.common.chat_prompt import TemplateRefused, chat_prompt, qa_form
from services.common.openai_errors import OpenAiError
from services.llm.native.planning import LlmParams
from services.llm.openai import tools
from services.llm.openai.messages import read_messages, read_prompt, value_kind
from services.llm.openai.tool_prompt import with_tools
from services.llm.openai.tools import ToolUse
from services.llm.request import Plan
from services.llm.states import Mode
from textgen.openai_error_body import CONTEXT_LENGTH_EXCEEDED

_NATIVE = bounds(LlmParams)
TOKENS, TEMPERATURE, TOP_P = _NATIVE["max_new_tokens"], _NATIVE["temperature"], Bound(0, 1, low_open=True)
PENALTY, CHOICES = Bound(-2, 2), Bound(1, 8)
# vLLM's sampling extras: top_k -1 or 0 is every token; a repetition penalty divides (multiplies) the positive
# (negative) logits of the tokens in the prompt and the text so far.
# A repetition penalty near 0 would divide positive logits into infinities: 0.01 is its floor.
TOP_K, MIN_P, REPETITION_PENALTY = Bound(-1, 1_000_000), Bound(0, 1), Bound(0.01, 10)
MAX_STOPS = 4


@dataclasses.dataclass(frozen=True)
class ChatParams:
    max_tokens: Annotated[int, TOKENS] = int(TOKENS.high)  # fewer when the prompt leaves less of the window
    max_completion_tokens: Annotated[int, TOKENS] = int(TOKENS.high)
    temperature: Annotated[float, TEMPERATURE] = 1.0
    top_p: Annotated[float, TOP_P] = 1.0
    n: Annotated[int, CHOICES] = 1
    presence_penalty: Annotated[float, PENALTY] = 0.0
    frequency_penalty: Annotated[float, PENALTY] = 0.0
    top_logprobs: Annotated[int, Bound(0, 20)] = 0
    top_k: Annotated[int, TOP_K] = 0
    min_p: Annotated[float, MIN_P] = 0.0
    repetition_penalty: Annotated[float, REPETITION_PENALTY] = 1.0


@dataclasses.dataclass(frozen=True)
class CompletionParams:
    max_tokens: Annotated[int, TOKENS] = 16
    temperature: Annotated[float, TEMPERATURE] = 1.0
    top_p: Annotated[float, TOP_P] = 1.0
    n: Annotated[int, CHOICES] = 1
    presence_penalty: Annotated[float, PENALTY] = 0.0
    frequency_penalty: Annotated[float, PENALTY] = 0.0
    logprobs: Annotated[int | None, Bound(0, 5)] = None
    top_k: Annotated[int, TOP_K] = 0
    min_p: Annotated[float, MIN_P] = 0.0
    repetition_penalty: Annotated[float, REPETITION_PENALTY] = 1.0


@dataclasses.dataclass(frozen=True)
class Asked:
    """An OpenAI request's fields, checked."""
    text: list[tuple[str, str]] | str  # a chat's (role, text) messages, or a completion's prompt
    stops: tuple[str, ...]
    max_tokens: int | None  # None: the default
    max_tokens_field: str  # the field it came from
    default_tokens: int
    sampling: planner.Sampling
    n: int
    top_logprobs: int | None  # None: no log probabilities
    schema: dict | None  # the JSON Schema the output is held to; None: free text
    tools: ToolUse | None = None  # the functions a chat's answer may call; None: it calls none


def _stops(value: struct_pb2.Value, violations: Violations) -> tuple[str, ...]:
    if value_kind(value) in (None, "null_value"):
        return ()
    values = [value] if value_kind(value) == "string_value" else value.list_value.values
    strings = tuple(v.string_value for v in values if value_kind(v) == "string_value")
    if value_kind(value) not in ("string_value", "list_value") or len(strings) != len(values) \
            or not 1 <= len(strings) <= MAX_STOPS or "" in strings:
        violations.add("stop", f"stop must be a string or a list of 1 to {MAX_STOPS} strings, none of them empty")
    return strings


def _schema(message, violations: Violations) -> dict | None:
    """The JSON Schema that response_format asks for, if any."""
    asked = message.response_format
    if asked.type in ("", "text"):
        return None
    if asked.type == "json_object":
        return JSON_OBJECT
    if asked.type != "json_schema":
        violations.add("response_format.type", "response_format.type must be 'text', 'json_object' or "
                                               f"'json_schema' (got {shown(asked.type)})")
        return None
    if not asked.HasField("json_schema"):
        violations.add("response_format.json_schema", "response_format.json_schema is required with type "
                                                      "'json_schema': {\"name\": ..., \"schema\": {...}}")
        return None
    tools.check_name(asked.json_schema.name, "response_format.json_schema.name", violations)
    return from_struct(asked.json_schema.schema)


def _top_logprobs(message, params, violations: Violations) -> int | None:
    """How many alternatives to list at each token; None: no log probabilities."""
    if isinstance(params, CompletionParams):
        return params.logprobs
    if message.HasField("top_logprobs") and not message.logprobs:
        violations.add("top_logprobs", "top_logprobs needs logprobs: true")
    return params.top_logprobs if message.logprobs else None


def _asked(message, text, params_type, violations: Violations, tool_use: ToolUse | None = None) -> Asked:
    params = from_request(params_type, message)
    violations.add_all(out_of_range(params))
    stops = _stops(message.stop, violations)
    schema = _schema(message, violations)
    top_logprobs = _top_logprobs(message, params, violations)
    if violations:
        raise OpenAiError.invalid(violations)
    tools.refuse_with_json_output(tool_use, schema)
    # A chat's max_completion_tokens, OpenAI's newer name for max_tokens, wins when both are set.
    newer = "max_completion_tokens" in message.DESCRIPTOR.fields_by_name and message.HasField("max_completion_tokens")
    field = "max_completion_tokens" if newer else "max_tokens"
    return Asked(text=text, stops=stops, max_tokens=getattr(message, field) if message.HasField(field) else None,
                 max_tokens_field=field, default_tokens=params_type.max_tokens, sampling=planner.Sampling(
                     temperature=params.temperature, top_p=params.top_p,
                     seed=message.seed if message.HasField("seed") else None,
                     presence_penalty=params.presence_penalty, frequency_penalty=params.frequency_penalty,
                     top_k=max(params.top_k, 0), min_p=params.min_p, repetition_penalty=params.repetition_penalty),
                 n=params.n, top_logprobs=top_logprobs, schema=schema, tools=tool_use)


def check_chat(message) -> Asked:
    violations = Violations()
    text = read_messages(message, violations)
    return _asked(message, text, ChatParams, violations, tools.read_tools(message, violations))


def check_completion(message) -> Asked:
    violations = Violations()
    return _asked(message, read_prompt(message, violations), CompletionParams, violations)


def _budget(prompt_ids: list[int], asked: Asked, prompt_field: str, window: int) -> int:
    """The tokens to generate: as asked when the window holds them after the prompt; by default as many as it
    holds, up to the default."""
    room = window - len(prompt_ids)
    if asked.max_tokens is None and room >= 1:
        return min(room, asked.default_tokens)
    if asked.max_tokens is not None and asked.max_tokens <= room:
        return asked.max_tokens
    more = "" if asked.max_tokens is None else f" and {asked.max_tokens_field}={asked.max_tokens}"
    raise OpenAiError(grpc.StatusCode.INVALID_ARGUMENT,
                      f"{prompt_field} ({len(prompt_ids)} tokens){more} exceed the model's window of {window} "
                      "tokens", param=asked.max_tokens_field if more else prompt_field, code=CONTEXT_LENGTH_EXCEEDED)


def _tool_matcher(use: ToolUse, tokenizer, violations: Violations):
    """The matcher of an answer held to `use`'s calls; None, with a violation naming the function whose parameters
    cannot be compiled, when the grammar cannot be."""
    try:
        return grammars_for(tokenizer).lark_matcher(tools.grammar(use))
    except SchemaRefused as refused:
        for i, function in enumerate(use.functions):
            if function in use.callable:
                planner.json_matcher(function.parameters, f"tools[{i}].function.parameters", tokenizer, violations)
        if not violations:
            violations.add("tools", f"the tools cannot be compiled into a grammar: {refused}")
        return None


def _held(plan: Plan, asked: Asked, tokenizer) -> Plan:
    """The plan with what only the OpenAI API asks for: log probabilities, and the grammar its output is held to
    (JSON, or tool calls)."""
    violations, grammar = Violations(), None
    if asked.schema is not None:
        field = "response_format.json_schema.schema" if asked.schema is not JSON_OBJECT else "response_format"
        grammar = planner.json_matcher(asked.schema, field, tokenizer, violations)
    if asked.tools is not None:
        grammar = _tool_matcher(asked.tools, tokenizer, violations)
    if violations:
        raise OpenAiError.invalid(violations)
    return dataclasses.replace(plan, top_logprobs=asked.top_logprobs, grammar=grammar,
                               reads_tool_calls=asked.tools is not None)


def _plan_qa(question: str, context: str, asked: Asked, tokenizer, window: int) -> Plan:
    """The native planner's QA plan, as /generate_with_llm answers this question from this context."""
    violations = Violations()
    planner.check_question(question, violations)
    planner.check_context(context, violations)
    budget = asked.max_tokens or LlmParams.max_new_tokens
    planned = violations or planner.plan_qa(question, context, budget, asked.sampling, tokenizer, window)
    if isinstance(planned, Violations):
        raise OpenAiError.invalid(planned)
    return planned


def plan_chat(asked: Asked, qa_adapter: bool, tokenizer, window: int) -> Plan:
    """An adapter trained on the QA prompt (`qa_adapter`) asked in the QA form as the last, user message answers in
    the answer format; anything else is a chat in the model's template."""
    role, last = asked.text[-1]
    free = asked.schema is None and asked.tools is None
    qa = qa_form(last) if qa_adapter and role == "user" and free else None
    if qa is not None:
        return _held(_plan_qa(*qa, asked, tokenizer, window), asked, tokenizer)
    messages, template_tools = with_tools(asked.text, asked.tools, tokenizer)
    try:
        prompt_ids, implied_stops = chat_prompt(tokenizer, messages, tools=template_tools)
    except TemplateRefused as error:
        raise OpenAiError(grpc.StatusCode.INVALID_ARGUMENT, str(error), param="messages") from None
    return _held(Plan(mode=Mode.CHAT, prompt_ids=prompt_ids, lead="", max_new_tokens=_budget(
        prompt_ids, asked, "messages", window), ending=stop_at(asked.stops + implied_stops),
        **dataclasses.asdict(asked.sampling)), asked, tokenizer)


def plan_completion(asked: Asked, tokenizer, window: int) -> Plan:
    """The prompt continued; like the native text mode, the text starts at the end-of-text token."""
    prompt_ids = [tokenizer.eos_token_id, *tokenizer(asked.text, add_special_tokens=False)["input_ids"]]
    return _held(Plan(mode=Mode.COMPLETION, prompt_ids=prompt_ids, lead="", max_new_tokens=_budget(
        prompt_ids, asked, "prompt", window), ending=stop_at(asked.stops), **dataclasses.asdict(asked.sampling)),
        asked, tokenizer)
