"""OpenAI's Responses API through Envoy with the official `openai` client, on the tiny random GPT-2: a response is the
chat completion it translates to (the same greedy text), `previous_response_id` goes on from a stored conversation,
a stream is OpenAI's typed events, tools and function_call_output items round-trip, stored responses are retrieved
and deleted, and bad input is a 400 naming the Responses API's own field."""
import json

import jsonschema
import openai
import pydantic
import pytest

from tests.openai_service import client, gateway, llm, metrics_port, models_dir  # noqa: F401

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10}}, "required": ["city"],
           "additionalProperties": False}
TOOLS = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
GREEDY = {"model": "base", "temperature": 0, "max_output_tokens": 12}


def chat_text(client, messages: list[dict]) -> str:
    answer = client.chat.completions.create(model="base", messages=messages, temperature=0, max_tokens=12)
    return answer.choices[0].message.content


def test_a_response_is_the_chat_completion_it_translates_to_and_is_stored(client):
    made = client.responses.create(**GREEDY, instructions="Be brief.", input="Tell me about the sea.")
    assert made.id.startswith("resp_") and made.object == "response" and made.instructions == "Be brief."
    assert made.output_text == chat_text(client, [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "Tell me about the sea."}])
    [item] = made.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert made.usage.output_tokens == 12 and made.status == "incomplete"  # the random model never ends on its own
    assert made.incomplete_details.reason == "max_output_tokens"
    assert made.usage.total_tokens == made.usage.input_tokens + made.usage.output_tokens
    again = client.responses.retrieve(made.id)
    assert (again.id, again.output_text, again.usage.input_tokens) == (made.id, made.output_text,
                                                                       made.usage.input_tokens)


def test_previous_response_id_goes_on_from_the_stored_conversation_without_its_instructions(client):
    first = client.responses.create(**GREEDY, instructions="Be brief.", input="Tell me about the sea.")
    second = client.responses.create(**GREEDY, input="And the mountains?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.output_text == chat_text(client, [{"role": "user", "content": "Tell me about the sea."},
                                                    {"role": "assistant", "content": first.output_text},
                                                    {"role": "user", "content": "And the mountains?"}])


def test_a_stream_is_openais_typed_events_with_the_unary_text(client):
    unary = client.responses.create(**GREEDY, input="Tell me about the sea.")
    events = list(client.responses.create(**GREEDY, input="Tell me about the sea.", stream=True))
    kinds = [event.type for event in events]
    deltas = kinds.count("response.output_text.delta")
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * deltas,
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.incomplete"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == unary.output_text == events[-1].response.output_text
    assert client.responses.retrieve(events[-1].response.id).output_text == text


def test_a_function_call_is_held_to_its_schema_streamed_and_answered(client):
    called = client.responses.create(model="base", input="Weather in Paris?", tools=TOOLS, tool_choice="required",
                                     parallel_tool_calls=False, max_output_tokens=200, temperature=0)
    [call] = called.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER)
    events = list(client.responses.create(model="base", input="Weather in Paris?", tools=TOOLS, stream=True,
                                          tool_choice="required", parallel_tool_calls=False, max_output_tokens=200, temperature=0))
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    pieces = "".join(event.delta for event in events if event.type == "response.function_call_arguments.delta")
    assert pieces == events[-3].arguments == call.arguments
    answered = client.responses.create(model="base", previous_response_id=called.id, tools=TOOLS, max_output_tokens=5,
                                       input=[{"type": "function_call_output", "call_id": call.call_id,
                                               "output": "sunny"}])
    assert answered.status in ("completed", "incomplete")


def test_unstored_and_deleted_responses_are_not_found(client):
    unstored = client.responses.create(**GREEDY, input="Hi", store=False)
    assert unstored.store is False
    deleted = client.responses.create(**GREEDY, input="Hi")
    client.responses.delete(deleted.id)
    for response_id in (unstored.id, deleted.id):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response_id)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(**GREEDY, input="Hi", previous_response_id=unstored.id)
    assert missing.value.body["param"] == "previous_response_id"


BAD_RESPONSES = [
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]",
     "only text is served (got type 'input_image')"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]", "input[0] must be a message"),
    ({"max_output_tokens": 0}, "max_output_tokens", "max_output_tokens must be between 1 and 512 (got 0)"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "nope"}}}}, "text.format.schema",
     "text.format.schema cannot be compiled into a grammar"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice",
     "tool_choice names 'nope'"),
    ({"input": [{"role": "user", "content": "Hi"}, {"type": "function_call_output", "call_id": "c9", "output": "x"}]},
     "input[1].tool_call_id", "input[1].tool_call_id must be the id of a call"),
    ({"include": ["message.output_text.logprobs"]}, "include", "include: no extra output is served"),
    ({"truncation": "auto"}, "truncation", "truncation must be 'disabled' (got 'auto')"),
]


@pytest.mark.parametrize("change, param, message", BAD_RESPONSES, ids=[p for _, p, _ in BAD_RESPONSES])
def test_bad_input_names_the_responses_apis_own_field(client, change, param, message):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(**{**GREEDY, "input": "Hi", **change})
    assert refused.value.body["param"] == param and message in refused.value.body["message"]


class Capital(pydantic.BaseModel):
    country: str
    city: str


def test_parse_and_adapters(client):
    parsed = client.responses.parse(model="base", input="The capital of France?", text_format=Capital,
                                    max_output_tokens=80, temperature=0)
    assert isinstance(parsed.output_parsed, Capital)
    assert client.responses.create(**{**GREEDY, "model": "sft"}, input="Hi").model == "sft"
    assert client.responses.create(**GREEDY, input="Hi", include=[], truncation="disabled").status == "incomplete"
