"""The OpenAI-compatible API's errors through Envoy, as the official `openai` client sees them: bad input as a
BadRequestError naming the parameter, the queue bound as a RateLimitError (and a client going away frees its row),
routing on the top-level `stream` field whatever the content type, and Envoy's own replies in OpenAI's error form."""
import json
import time

import httpx
import openai
import pytest
from textgen.v1 import llm_pb2

from tests.openai_service import HELLO, client, gateway, llm, metrics_port, models_dir, native  # noqa: F401


BAD_CHATS = [
    ({"max_tokens": 0}, "max_tokens", "max_tokens must be between 1 and 512 (got 0)"),
    ({"max_tokens": 513}, "max_tokens", "max_tokens must be between 1 and 512 (got 513)"),
    ({"max_completion_tokens": 0}, "max_completion_tokens", "max_completion_tokens must be between 1 and 512"),
    ({"messages": []}, "messages", "messages must hold at least one message"),
    ({"n": 0}, "n", "n must be between 1 and 8 (got 0)"),
    ({"n": 9}, "n", "n must be between 1 and 8 (got 9)"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", "top_logprobs must be between 0 and 20 (got 21)"),
    ({"top_logprobs": 2}, "top_logprobs", "top_logprobs needs logprobs: true"),
    ({"presence_penalty": -2.5}, "presence_penalty", "presence_penalty must be between -2 and 2 (got -2.5)"),
    ({"frequency_penalty": 3}, "frequency_penalty", "frequency_penalty must be between -2 and 2 (got 3.0)"),
    ({"response_format": {"type": "yaml"}}, "response_format.type",
     "response_format.type must be 'text', 'json_object' or 'json_schema' (got 'yaml')"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema",
     "response_format.json_schema is required with type 'json_schema'"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}},
     "response_format.json_schema.name", "response_format.json_schema.name must be 1 to 64 letters"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}}},
     "response_format.json_schema.schema",
     "response_format.json_schema.schema cannot be compiled into a grammar: Invalid type: nope"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}}}}, "response_format.json_schema.schema",
     "it forces 512 tokens or more before any choice"),
    ({"temperature": 2.5}, "temperature", "temperature must be between 0 and 2.0 (got 2.5)"),
    ({"top_p": 0}, "top_p", "top_p must be greater than 0 and at most 1 (got 0.0)"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "stop must be a string or a list of 1 to 4 strings"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role",
     "messages[0].role must be one of 'system', 'user', 'assistant', 'developer', 'tool' (got 'robot')"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id",
     "messages[0].tool_call_id must be the id of a call an earlier assistant message made (got '')"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content",
     "messages[0].content must be a string or a list of text parts"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0]", "only text is served (got type 'image_url')"),
    ({"messages": [{"role": "user", "content": "x " * 50_001}]}, "messages", "at most 100000 characters"),
    ({"messages": [{"role": "user", "content": "the sea " * 400}], "max_tokens": 512}, "max_tokens",
     "exceed the model's window of 1024 tokens"),
    # Wrong JSON types are refused by Envoy's transcoder, with its own words.
    ({"messages": "hello"}, None, 'messages: invalid value "hello"'),
    ({"max_tokens": "many"}, None, 'max_tokens: invalid value "many" for type TYPE_INT32'),
]


@pytest.mark.parametrize("change, param, message", BAD_CHATS, ids=[m[:40] for _, _, m in BAD_CHATS])
def test_bad_input_is_a_bad_request_error_with_the_message(client, change, param, message):
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as error:
            client.chat.completions.create(**{"model": "base", "messages": HELLO, **change, "stream": stream})
        assert message in error.value.message and error.value.param == param
        assert error.value.type == "invalid_request_error"


def test_a_bad_completion_prompt_is_a_bad_request_error(client):
    with pytest.raises(openai.BadRequestError, match="one prompt per request"):
        client.completions.create(model="base", prompt=["one", "two"])
    with pytest.raises(openai.BadRequestError, match="token ids not accepted"):
        client.completions.create(model="base", prompt=[[1, 2, 3]])


def in_flight(native) -> int:
    return native.GetStatus(llm_pb2.GetLlmStatusRequest()).in_flight


def cancelled_tokens(metrics_port: int) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    found = [line for line in metrics.splitlines()
             if line.startswith('textgen_llm_generated_tokens_total{stop="cancelled"}')]
    return float(found[0].split()[-1]) if found else 0.0


def test_past_the_queue_bound_a_rate_limit_error_and_a_client_gone_frees_its_row(client, native, metrics_port):
    long = {"model": "base", "messages": HELLO, "max_tokens": 512, "temperature": 0}
    before = cancelled_tokens(metrics_port)
    streams = [client.chat.completions.create(**long, stream=True) for _ in range(2)]
    for stream in streams:  # the role, then a piece of text: the request is decoding in the batch
        next(stream), next(stream)
    for stream in (False, True):  # the batch is full and LLM_MAX_QUEUED is 0
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(**long, stream=stream)
        assert refused.value.code == "rate_limit_exceeded" and "LLM_MAX_QUEUED" in refused.value.message
    for stream in streams:
        stream.close()  # the client goes away mid-answer
    deadline = time.monotonic() + 2
    while in_flight(native):
        assert time.monotonic() < deadline, "the service kept generating for a client that had gone"
        time.sleep(0.02)
    assert cancelled_tokens(metrics_port) > before  # cut short, not finished
    assert client.chat.completions.create(**{**long, "max_tokens": 4}).usage.completion_tokens <= 4


def test_envoy_routes_on_the_top_level_stream_field_whatever_the_content_type(gateway):
    body = {"model": "base", "prompt": "The sea", "max_tokens": 4, "temperature": 0, "stream": True}
    for content_type in ("application/json", "application/json; charset=utf-8", "text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        response = httpx.post(f"{gateway.url}/v1/completions", content=json.dumps(body).encode(), headers=headers,
                              timeout=30)
        assert response.headers["content-type"] == "text/event-stream", content_type
        events = [line for line in response.text.split("\n\n") if line]
        assert all(event.startswith("data: {") for event in events) and "[DONE]" not in response.text
    nested = {"model": "base", "messages": [{"role": "user", "content": "Hi", "stream": True}], "max_tokens": 2}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=nested, timeout=30)
    assert response.headers["content-type"] == "application/json" and response.json()["object"] == "chat.completion"


def test_envoy_answers_its_own_errors_on_v1_as_openai_errors(gateway):
    unknown = httpx.post(f"{gateway.url}/v1/embeddings", json={"model": "base", "input": "x"}, timeout=10)
    assert unknown.status_code == 404 and unknown.json() == {"error": {
        "message": "Could not resolve /v1/embeddings to a method.", "type": "invalid_request_error", "param": None,
        "code": None}}
    malformed = httpx.post(f"{gateway.url}/v1/chat/completions", content=b'{"model": ', timeout=10)
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"
    native = httpx.post(f"{gateway.url}/generate_with_llm", json={"question": "Why?", "max_new_tokens": 0},
                        timeout=10)
    assert native.status_code == 400 and native.json()["code"] == 3  # the native paths keep google.rpc.Status
