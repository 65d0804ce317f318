"""Tool calls without a server: the tools told to the model (in the system message, or by a chat template that writes
them), an answer's text read back as calls whole or piece by piece, and the grammar's hold on a call's arguments."""
import copy
import json

import pytest
import transformers
from google.protobuf import json_format
from textgen.v1 import openai_pb2

from services.common.errors import Violations
from services.llm.constraints import grammars_for
from services.llm.openai import tools
from services.llm.openai.messages import read_messages
from services.llm.openai.tool_prompt import with_tools
from services.llm.openai.tool_stream import CallPieces
from textgen.paths import EMBEDDED_MODEL_FOLDER

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
           "additionalProperties": False}
PARIS = '<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}\n</tool_call>'
@pytest.fixture(scope="module")
def tokenizer(embedded_models_dir):
    return transformers.AutoTokenizer.from_pretrained(embedded_models_dir / EMBEDDED_MODEL_FOLDER)


ROME = '<tool_call>\n{"name": "get_time", "arguments": {"zone":"CET","exact":true}}\n</tool_call>'


def request(tool_choice=None, parallel=None, **function) -> openai_pb2.ChatCompletionRequest:
    body = {"model": "base", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER, **function}},
        {"type": "function", "function": {"name": "get_time"}}]}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    return json_format.ParseDict(body, openai_pb2.ChatCompletionRequest())


def read(message) -> tuple[tools.ToolUse | None, Violations]:
    violations = Violations()
    return tools.read_tools(message, violations), violations


def test_tool_choice_decides_what_may_be_called():
    auto, _ = read(request())
    assert [f.name for f in auto.callable] == ["get_weather", "get_time"] and not auto.required and auto.parallel
    named, _ = read(request({"type": "function", "function": {"name": "get_time"}}, parallel=False))
    assert [f.name for f in named.callable] == ["get_time"] and named.required and not named.parallel
    assert read(request("none"))[0] is None
    for choice, problem in [({"type": "function", "function": {"name": "nope"}}, "tool_choice names 'nope'"),
                            ("sometimes", "tool_choice must be 'none', 'auto', 'required' or")]:
        use, violations = read(request(choice))
        assert use is None and violations.fields == ["tool_choice"] and problem in violations.status().details


def test_a_model_without_a_tool_template_is_told_of_its_tools_in_the_system_message(tokenizer):
    use, _ = read(request("required"))
    messages, template_tools = with_tools([("system", "Be brief."), ("user", "Weather?")], use, tokenizer)
    assert template_tools is None and messages[1] == ("user", "Weather?")
    role, text = messages[0]
    assert role == "system" and text.startswith("Be brief.\n\n# Tools\n")
    assert '{"type": "function", "function": {"name": "get_weather", "description": ""' in text
    assert "<tool_call>\n{\"name\": <function-name>, \"arguments\": <arguments-object>}\n</tool_call>" in text


def test_a_template_that_writes_tools_gets_them_and_the_messages_as_they_are(tokenizer):
    tokenizer = copy.copy(tokenizer)
    tokenizer.chat_template = "{% for t in tools %}[{{ t.function.name }}]{% endfor %}" + tokenizer.chat_template
    use, _ = read(request())
    messages, template_tools = with_tools([("user", "Weather?")], use, tokenizer)
    assert messages == [("user", "Weather?")] and [t["function"]["name"] for t in template_tools] == [
        "get_weather", "get_time"]


def test_an_answer_is_its_text_or_the_calls_it_finished():
    assert tools.read_calls("It is sunny.") == ("It is sunny.", [])
    content, calls = tools.read_calls(f"{PARIS}\n{ROME}")
    assert content is None and [(c.name, c.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'), ("get_time", '{"zone":"CET","exact":true}')]
    assert all(c.id.startswith("call_") for c in calls) and calls[0].id != calls[1].id
    cut, calls = tools.read_calls(f'{PARIS}\n<tool_call>\n{{"name": "get_time", "arguments": {{"zo')
    assert cut is None and [c.name for c in calls] == ["get_weather"]  # the half call is dropped, not shown
    assert tools.read_calls('<tool_call>\n{"name": "get_w') == (None, [])


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_a_streamed_answer_is_sent_as_call_pieces_whatever_its_pieces(size):
    text, pieces, sent = f"{PARIS}\n{ROME}", CallPieces(), []
    for start in range(0, len(text), size):
        content, deltas = pieces.feed(text[start:start + size])
        assert content is None
        sent += deltas
    firsts = [d for d in sent if d.HasField("id")]
    assert [(d.index, d.type, d.function.name) for d in firsts] == [(0, "function", "get_weather"),
                                                                     (1, "function", "get_time")]
    arguments = ["".join(d.function.arguments for d in sent if d.index == i) for i in (0, 1)]
    assert arguments == ['{"city":"Paris"}', '{"zone":"CET","exact":true}']
    text_pieces = CallPieces()
    assert [text_pieces.feed(p)[0] for p in ("It ", "is <b>")] == ["It ", "is <b>"]


def test_the_grammar_holds_a_call_to_its_arguments_schema_and_auto_allows_text(tokenizer):
    required, _ = read(request("required", parallel=False))
    matcher = grammars_for(tokenizer).lark_matcher(tools.grammar(required))

    def takes(text: str) -> bool:
        trial = matcher.copy()
        try:
            for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
                trial.accept(token)
        except RuntimeError:
            return False
        return True

    assert takes(PARIS) and takes(ROME.replace('"zone":"CET","exact":true', ""))
    assert not takes(PARIS.replace('"city"', '"town"'))  # additionalProperties false
    assert not takes("Sunny") and not takes(PARIS + "\n" + PARIS)  # a call is required, and only one
    auto, _ = read(request())
    free = grammars_for(tokenizer).lark_matcher(tools.grammar(auto)).copy()
    for token in tokenizer("Sunny all week.", add_special_tokens=False)["input_ids"]:
        free.accept(token)
    assert json.loads(tools.read_calls(PARIS)[1][0].arguments) == {"city": "Paris"}


def test_a_conversation_shows_its_calls_as_blocks_and_the_results_as_one_user_turn():
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
             {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    message = json_format.ParseDict({"model": "base", "messages": [
        {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"}]}, openai_pb2.ChatCompletionRequest())
    violations = Violations()
    assert read_messages(message, violations) == [
        ("system", "Be brief."), ("user", "Weather?"),
        ("assistant", PARIS + '\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'),
        ("user", "<tool_response>\nsunny\n</tool_response>\n<tool_response>\nnoon\n</tool_response>")]
    assert not violations


def test_properties_come_in_the_order_required_lists_them_whatever_the_struct_kept():
    from google.protobuf import struct_pb2

    from services.llm.constraints import from_struct

    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {"zone": {}, "amount": {}, "city": {"type": "object", "properties": {
        "b": {}, "a": {}}}}, "required": ["city", "zone"]})
    ordered = from_struct(schema)
    assert list(ordered["properties"]) == ["city", "zone", "amount"]
    assert list(ordered["properties"]["city"]["properties"]) == ["a", "b"]  # none required: by name
