"""Tool calls through Envoy with the official `openai` client, on the tiny random GPT-2 (whose answers are noise: what
holds them to calls is the grammar): `required` and a named function answer with calls whose arguments validate
against the function's schema, unary and streamed alike; `auto` answers text or calls, never a half call; a
conversation carries calls and their results back; bad tools are a 400 naming the param. Beside them, the client's
`parse` helpers, which send a Pydantic model's schema as response_format or as a strict tool."""
import json

import jsonschema
import openai
import pydantic
import pytest

from tests.openai_service import client, gateway, llm, metrics_port, models_dir  # noqa: F401

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": False}
CLOCK = {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The weather of a city",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "parameters": CLOCK}}]
ASK = [{"role": "user", "content": "What is the weather in Paris for 3 days?"}]
# A single call: the random model, allowed more, calls again until max_tokens runs out.
ONE_CALL = {"model": "base", "messages": ASK, "tools": TOOLS, "max_tokens": 200, "temperature": 0,
            "parallel_tool_calls": False}


def test_required_answers_with_a_call_whose_arguments_validate(client):
    answer = client.chat.completions.create(**ONE_CALL, tool_choice="required")
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name in ("get_weather", "get_time")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER if call.function.name == "get_weather" else CLOCK)


def test_a_named_function_is_the_one_called(client):
    named = {"type": "function", "function": {"name": "get_time"}}
    [call] = client.chat.completions.create(**ONE_CALL, tool_choice=named).choices[0].message.tool_calls
    assert call.function.name == "get_time"
    jsonschema.validate(json.loads(call.function.arguments), CLOCK)


def test_a_streamed_call_comes_as_its_id_and_name_then_pieces_of_its_arguments(client):
    unary = client.chat.completions.create(**ONE_CALL, tool_choice="required").choices[0].message.tool_calls[0]
    deltas, finish, contents = [], [], []
    for chunk in client.chat.completions.create(**ONE_CALL, tool_choice="required", stream=True):
        for choice in chunk.choices:
            deltas += choice.delta.tool_calls or []
            contents.append(choice.delta.content)
            finish.append(choice.finish_reason)
    first, rest = deltas[0], deltas[1:]
    assert (first.index, first.type, first.function.name, first.function.arguments) == (
        0, "function", unary.function.name, "")
    assert first.id.startswith("call_") and all(d.id is None and d.function.name is None for d in rest)
    assert len(rest) > 1 and "".join(d.function.arguments for d in rest) == unary.function.arguments
    assert set(contents) <= {None, ""} and finish[-1] == "tool_calls"


def test_auto_answers_text_or_calls_never_a_half_call(client):
    text = client.chat.completions.create(model="base", messages=ASK, tools=TOOLS, max_tokens=20, temperature=0)
    message = text.choices[0].message
    assert message.tool_calls == [] and message.content and not message.content.startswith("<")
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
        model="base", messages=ASK, tools=TOOLS, max_tokens=20, temperature=0, stream=True) if chunk.choices)
    assert streamed == message.content


def test_a_conversation_carries_the_calls_and_their_results(client):
    call = client.chat.completions.create(**ONE_CALL, tool_choice="required").choices[0].message
    results = [{"role": "tool", "tool_call_id": c.id, "content": '{"forecast": "sun"}'} for c in call.tool_calls]
    history = [*ASK, call.model_dump(exclude_none=True), *results]
    answer = client.chat.completions.create(model="base", messages=history, tools=TOOLS, max_tokens=5)
    assert answer.choices[0].finish_reason in ("length", "stop", "tool_calls")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="base", max_tokens=5, messages=[
            *history[:2], {"role": "tool", "tool_call_id": "call_unknown", "content": "x"}])
    assert refused.value.body["param"] == "messages[2].tool_call_id"


BAD_TOOLS = [
    ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice",
     "tool_choice names 'nope', which is not one of the tools (get_weather, get_time)"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}]},
     "tools[0].function.parameters", "tools[0].function.parameters cannot be compiled into a grammar"),
    ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools[0].type",
     "tools[0].type must be 'function' (got 'retrieval')"),
    ({"tools": [TOOLS[0], TOOLS[0]]}, "tools[1].function.name", "'get_weather' is already a tool's name"),
    ({"tools": [], "tool_choice": "required"}, "tool_choice", "tool_choice needs tools"),
    ({"response_format": {"type": "json_object"}}, "response_format",
     "response_format cannot hold an answer that may call tools"),
]


@pytest.mark.parametrize("change, param, message", BAD_TOOLS, ids=[p for _, p, _ in BAD_TOOLS])
def test_bad_tools_are_a_bad_request_naming_the_param(client, change, param, message):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**{**ONE_CALL, "tool_choice": "required", **change})
    assert refused.value.body["param"] == param and message in refused.value.body["message"]


class Capital(pydantic.BaseModel):
    country: str
    city: str


def test_the_clients_parse_helpers_get_a_validated_object(client):
    parsed = client.chat.completions.parse(model="base", messages=ASK, response_format=Capital, max_tokens=60,
                                           temperature=0)
    assert isinstance(parsed.choices[0].message.parsed, Capital)
    called = client.chat.completions.parse(model="base", messages=ASK, tools=[openai.pydantic_function_tool(Capital)],
                                           tool_choice="required", parallel_tool_calls=False, max_tokens=80,
                                           temperature=0)
    [call] = called.choices[0].message.tool_calls
    assert call.function.name == "Capital" and isinstance(call.function.parsed_arguments, Capital)
