"""The OpenAI-compatible API through Envoy, driven by the official `openai` client against the llm service on the tiny
random GPT-2 (and, for the chat template, the embedded SmolLM2): both endpoints unary and streamed, sync and async,
adapters as models, every error as the client's own exception class, the queue bound and a client going away."""
import asyncio
import json
import time

import grpc
import httpx
import openai
import pytest
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import FACTS, RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import free_port, start_gateway, start_service
from services.common.prompts import PREFIX, SUFFIX

HELLO = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Tell me about the sea."}]
GREEDY = {"temperature": 0, "max_tokens": 24}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = random_models_dir(tmp_path_factory.mktemp("openai-models"))
    train_tiny_adapter(directory, "sft", steps=60)
    return directory  # no rl adapter: a model that is not served


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def llm(models_dir, metrics_port):
    # Two rows and no waiting line: the queue-bound test fills the batch with two streams.
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "LLM_TORCH_THREADS": "1",
           "LLM_MAX_BATCH_SIZE": "2", "LLM_MAX_QUEUED": "0", "LLM_METRICS_PORT": str(metrics_port)}
    with start_service("services.llm", env, "LLM_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def gateway(llm):
    with start_gateway(llm=llm.address) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60) as made:
        yield made


@pytest.fixture(scope="module")
def native(llm):
    with grpc.insecure_channel(llm.address) as channel:
        yield llm_pb2_grpc.LlmServiceStub(channel)


@pytest.fixture(scope="module")
def base_name(models_dir) -> str:
    return str(models_dir / RANDOM_GPT2)


def streamed_chat(client, **request):
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


def test_the_models_are_the_base_and_each_adapter_served(client, base_name):
    listed = {model.id: model for model in client.models.list().data}
    assert set(listed) == {base_name, "sft"}  # rl has no version published
    assert listed["sft"].parent == base_name and listed["sft"].owned_by == "textgen"
    assert "parent" not in listed[base_name].to_dict()
    assert client.models.retrieve("base").id == base_name
    assert client.models.retrieve(base_name).id == base_name  # an id with slashes, percent-encoded in the path
    assert client.models.retrieve("sft").version == listed["sft"].version


@pytest.mark.parametrize("model, reason", [("gpt-4o", "model 'gpt-4o' is not served here"),
                                           ("rl", "adapter 'rl' is not served (no version published)")])
def test_an_unknown_model_is_a_not_found_error_with_code_model_not_found(client, model, reason):
    calls = [lambda: client.chat.completions.create(model=model, messages=HELLO),
             lambda: client.chat.completions.create(model=model, messages=HELLO, stream=True),
             lambda: client.completions.create(model=model, prompt="The sea"),
             lambda: client.models.retrieve(model)]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as error:
            call()
        assert error.value.code == "model_not_found" and error.value.param == "model"
        assert error.value.type == "invalid_request_error" and reason in error.value.message


def test_a_streamed_greedy_chat_is_the_unary_answer_chunk_by_chunk(client, base_name):
    answer = client.chat.completions.create(model="base", messages=HELLO, **GREEDY)
    assert answer.object == "chat.completion" and answer.model == base_name and answer.id.startswith("chatcmpl-")
    choice = answer.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = answer.usage
    assert 0 < usage.completion_tokens <= 24 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert (usage.completion_tokens == 24) == (choice.finish_reason == "length")
    chunks, text = streamed_chat(client, model="base", messages=HELLO, **GREEDY)
    assert text == choice.message.content
    assert chunks[0].choices[0].delta.role == "assistant" and len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    assert chunks[-1].choices == [] and chunks[-1].usage == usage  # stream_options.include_usage
    again = client.chat.completions.create(model="base", messages=HELLO, max_completion_tokens=5, temperature=0)
    assert again.usage.completion_tokens <= 5 and choice.message.content.startswith(again.choices[0].message.content)


def test_a_streamed_greedy_completion_is_the_unary_text(client):
    answer = client.completions.create(model="base", prompt="The captain", temperature=0)
    assert answer.object == "text_completion" and answer.usage.completion_tokens <= 16  # OpenAI's default
    chunks = list(client.completions.create(model="base", prompt="The captain", temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == answer.choices[0].text
    assert chunks[-1].choices[0].finish_reason == answer.choices[0].finish_reason
    assert all(c.usage is None for c in chunks)
    listed = client.completions.create(model="base", prompt=["The captain"], temperature=0)
    assert listed.choices[0].text == answer.choices[0].text


def test_the_async_client_gets_the_same_answers(client):
    expected = client.chat.completions.create(model="base", messages=HELLO, **GREEDY).choices[0].message.content

    async def ask() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=str(client.base_url), api_key="unused", max_retries=0) as aclient:
            answer = await aclient.chat.completions.create(model="base", messages=HELLO, **GREEDY)
            stream = await aclient.chat.completions.create(model="base", messages=HELLO, **GREEDY, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return answer.choices[0].message.content, text

    assert asyncio.run(ask()) == (expected, expected)


def test_the_stream_helper_assembles_the_answer(client):
    # The helper refuses an answer cut by max_tokens: ask what ends by itself, an adapter's answer in the QA form.
    question, context, _ = FACTS[1]
    asked = {"model": "sft", "temperature": 0,
             "messages": [{"role": "user", "content": f"Context: {context}\nQuestion: {question}"}]}
    expected = client.chat.completions.create(**asked).choices[0]
    assert expected.finish_reason == "stop"
    with client.chat.completions.stream(**asked) as stream:
        deltas = "".join(event.delta for event in stream if event.type == "content.delta")
        final = stream.get_final_completion().choices[0]
    assert deltas == final.message.content == expected.message.content
    assert final.finish_reason == "stop"


def test_stop_strings_end_the_text_and_are_left_out(client):
    text = client.completions.create(model="base", prompt="The sea", max_tokens=24, temperature=0).choices[0].text
    stop = text[len(text) // 2:len(text) // 2 + 3]
    cut = client.completions.create(model="base", prompt="The sea", max_tokens=24, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[:text.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model="base", prompt="The sea", max_tokens=24, temperature=0, stop=stop,
                                         stream=True)
    assert "".join(c.choices[0].text for c in streamed) == cut.choices[0].text


def test_an_adapter_asked_in_the_qa_form_answers_as_the_native_api(client, native):
    question, context, _ = FACTS[0]
    expected = native.Generate(llm_pb2.LlmGenerateRequest(question=question, context=context, adapter="sft"))
    asked = [{"role": "system", "content": "Answer from the context."},
             {"role": "user", "content": [{"type": "text", "text": f"Context: {context}"},
                                          {"type": "text", "text": f"Question: {question}"}]}]
    answer = client.chat.completions.create(model="sft", messages=asked, temperature=0)
    content = answer.choices[0].message.content
    assert answer.model == "sft" and content == expected.generated_text
    assert content.startswith(PREFIX) and content.endswith(SUFFIX)
    assert answer.usage.completion_tokens == expected.generated_tokens
    _, streamed = streamed_chat(client, model="sft", messages=asked, temperature=0)
    assert streamed == content


BAD_CHATS = [
    ({"max_tokens": 0}, "max_tokens", "max_tokens must be between 1 and 512 (got 0)"),
    ({"max_tokens": 513}, "max_tokens", "max_tokens must be between 1 and 512 (got 513)"),
    ({"max_completion_tokens": 0}, "max_completion_tokens", "max_completion_tokens must be between 1 and 512"),
    ({"messages": []}, "messages", "messages must hold at least one message"),
    ({"n": 2}, "n", "n must be 1: one choice per request is served (got 2)"),
    ({"temperature": 2.5}, "temperature", "temperature must be between 0 and 2.0 (got 2.5)"),
    ({"top_p": 0}, "top_p", "top_p must be greater than 0 and at most 1 (got 0.0)"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "stop must be a string or a list of 1 to 4 strings"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "messages[0].role must be one of"),
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


def test_the_embedded_model_chats_through_its_chat_template(embedded_models_dir):
    env = {"MODELS_DIR": str(embedded_models_dir), "LLM_BASE_MODEL": "embedded", "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
        with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=120) as client:
            answer = client.chat.completions.create(
                model="base", temperature=0, max_tokens=12,
                messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}])
    choice = answer.choices[0]
    assert "Paris" in choice.message.content and choice.finish_reason == "stop"  # it ended its turn itself
    assert "<|im_" not in choice.message.content and "assistant" not in choice.message.content
