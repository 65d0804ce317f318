"""Output held to JSON, on the embedded SmolLM2 (a model that reads, so its answers end by themselves): OpenAI's
response_format through Envoy with the official client, unary and streamed, sync and async; the native API's
json_schema for text mode; and constrained rows beside free ones in one batch, the free ones answering as alone."""
import asyncio
import concurrent.futures
import json

import grpc
import jsonschema
import openai
import pytest
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.processes import start_gateway, start_service

PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 40},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "languages": {"type": "array", "items": {"type": "string", "enum": ["English", "French", "Italian"]},
                  "maxItems": 3}},
    "required": ["name", "age", "languages"], "additionalProperties": False}
ASK = [{"role": "user", "content": "Describe Ada Lovelace as JSON with her name, age and the languages she spoke."}]
AS_SCHEMA = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}


@pytest.fixture(scope="module")
def served(embedded_models_dir):
    env = {"MODELS_DIR": str(embedded_models_dir), "LLM_BASE_MODEL": "embedded", "LLM_TORCH_THREADS": "2"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
        yield llm, gateway


@pytest.fixture(scope="module")
def client(served):
    with openai.OpenAI(base_url=f"{served[1].url}/v1", api_key="unused", max_retries=0, timeout=180) as made:
        yield made


def test_a_schema_holds_the_answer_to_valid_json_unary_and_streamed(client):
    answer = client.chat.completions.create(model="base", messages=ASK, temperature=0, max_tokens=120,
                                            response_format=AS_SCHEMA)
    content = answer.choices[0].message.content
    jsonschema.validate(json.loads(content), PERSON)
    assert answer.choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model="base", messages=ASK, temperature=0, max_tokens=120,
                                                 response_format=AS_SCHEMA, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content


def test_sampled_choices_are_each_valid_against_the_schema(client):
    answer = client.chat.completions.create(model="base", messages=ASK, temperature=1.0, seed=7, n=2,
                                            max_tokens=120, response_format=AS_SCHEMA)
    for choice in answer.choices:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), PERSON)


CAPITAL = {"type": "object", "properties": {"capital": {"type": "string", "maxLength": 20}}, "required": ["capital"],
           "additionalProperties": False}


def test_json_object_is_an_object_for_the_async_client_and_completions_take_a_schema(client, served):
    async def ask():
        async with openai.AsyncOpenAI(base_url=f"{served[1].url}/v1", api_key="unused", max_retries=0,
                                      timeout=180) as made:
            return await made.chat.completions.create(
                model="base", temperature=0, max_tokens=80, response_format={"type": "json_object"},
                messages=[{"role": "user", "content": "Give the capital of France as JSON."}])

    chat = asyncio.run(ask())
    assert isinstance(json.loads(chat.choices[0].message.content), dict)
    completed = client.completions.create(
        model="base", prompt="The capital of France as JSON:", temperature=0, max_tokens=20,
        extra_body={"response_format": {"type": "json_schema", "json_schema": {"name": "capital", "schema": CAPITAL}}})
    jsonschema.validate(json.loads(completed.choices[0].text), CAPITAL)


def test_constrained_and_free_rows_share_the_batch_and_the_free_ones_answer_as_alone(client):
    free = dict(model="base", messages=[{"role": "user", "content": "Name three rivers."}], temperature=0,
                max_tokens=30)
    alone = client.chat.completions.create(**free).choices[0].message.content
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        constrained = [pool.submit(client.chat.completions.create, model="base", messages=ASK, temperature=0,
                                   max_tokens=120, response_format=AS_SCHEMA) for _ in range(2)]
        beside = [pool.submit(client.chat.completions.create, **free) for _ in range(2)]
        assert [f.result().choices[0].message.content for f in beside] == [alone, alone]
        for future in constrained:
            jsonschema.validate(json.loads(future.result().choices[0].message.content), PERSON)


def test_the_native_text_mode_takes_a_json_schema(served):
    llm, _ = served
    request = llm_pb2.LlmGenerateRequest(start_word="Ada", length=120, adapter="base")
    request.json_schema.update(PERSON)
    with grpc.insecure_channel(llm.address) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        answer = stub.Generate(request)
        jsonschema.validate(json.loads(answer.generated_text), PERSON)
        streamed = "".join(chunk.text for chunk in stub.GenerateStream(request))
        assert streamed == answer.generated_text
        qa = llm_pb2.LlmGenerateRequest(question="Who?", adapter="base")
        qa.json_schema.update(PERSON)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Generate(qa)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "json_schema is for text mode" in refused.value.details()
        broken = llm_pb2.LlmGenerateRequest(start_word="Ada", adapter="base")
        broken.json_schema.update({"type": "nope"})
        with pytest.raises(grpc.RpcError, match="json_schema cannot be compiled into a grammar: Invalid type"):
            stub.Generate(broken)
