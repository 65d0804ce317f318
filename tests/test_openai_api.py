"""The OpenAI-compatible API through Envoy, driven by the official `openai` client against the llm service on the tiny
random GPT-2 (and, for the chat template, the embedded SmolLM2): both endpoints unary and streamed, sync and async,
adapters as models, stop strings, and an adapter asked in the QA form answering as the native API. Errors are in
test_openai_errors.py."""
import asyncio

import openai
import pytest
from textgen.v1 import llm_pb2

from devtools.models import FACTS
from devtools.processes import start_gateway, start_service
from services.common.prompts import PREFIX, SUFFIX
from tests.openai_service import HELLO, base_name, client, gateway, llm, metrics_port, models_dir, native  # noqa: F401

GREEDY = {"temperature": 0, "max_tokens": 24}


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
    assert chunks[-1].choices == []  # stream_options.include_usage: the counts, and what the prefix cache saved
    assert chunks[-1].usage.model_dump(exclude={"prompt_tokens_details"}) == \
        usage.model_dump(exclude={"prompt_tokens_details"})
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens > usage.prompt_tokens_details.cached_tokens
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
