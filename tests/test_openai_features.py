"""What OpenAI's clients ask of the API beyond a plain answer, through Envoy with the official `openai` client:
log probabilities, checked against log-softmax of an in-process forward pass of the same tiny model; `n` choices;
presence and frequency penalties, checked against the same penalties applied in the test; `usage`'s cached prompt
tokens; and vLLM's /tokenize and /detokenize over REST. JSON output is in test_openai_json.py."""
import asyncio
import math

import httpx
import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from devtools.models import RANDOM_GPT2
from devtools.processes import start_gateway, start_service
# `client` is the shared one, on this module's `gateway` (eight rows: `n` up to 4 in one batch).
from tests.openai_service import HELLO, client, models_dir  # noqa: F401

PROMPT = "The sea was calm and"


@pytest.fixture(scope="module")
def gateway(models_dir):
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "LLM_TORCH_THREADS": "1",
           "LLM_MAX_BATCH_SIZE": "8"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as process:
        yield process


@pytest.fixture(scope="module")
def reference(models_dir):
    """The same tiny model and tokenizer, in this process."""
    folder = models_dir / RANDOM_GPT2
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    return [tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]  # as /v1/completions


def byte_level_bytes(token: str) -> bytes:
    """A byte-level BPE token's bytes: GPT-2's table of 256 printable characters, one per byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(
        b for b in range(256) if b not in printable)}
    return bytes(table[c] for c in token)


def token_ids(tokenizer, entries) -> list[int]:
    """The ids of tokens given by their bytes (as chat logprobs give them)."""
    by_bytes = {byte_level_bytes(token): index for token, index in tokenizer.get_vocab().items()
                if token != tokenizer.eos_token}
    return [by_bytes[bytes(entry.bytes)] for entry in entries]


def log_softmax_at_each_step(model, ids: list[int], new: list[int], temperature: float = 1.0, penalties=(0, 0)):
    """Each new token's log probabilities, as the service should compute them: the logits after that token's prefix,
    less the presence and frequency penalties of the tokens before it, over the temperature."""
    with torch.no_grad():
        logits = model(torch.tensor([ids + new])).logits[0, len(ids) - 1:-1].float()
    presence, frequency = penalties
    for step in range(len(new)):
        for token in set(new[:step]):
            logits[step, token] -= new[:step].count(token) * frequency + presence
    return torch.log_softmax(logits / temperature, dim=-1)


def test_chat_logprobs_are_log_softmax_of_the_logits_that_chose_each_token(client, reference):
    model, tokenizer = reference
    answer = client.completions.create(model="base", prompt=PROMPT, max_tokens=12, temperature=0, logprobs=3)
    logprobs = answer.choices[0].logprobs
    new = tokenizer(answer.choices[0].text, add_special_tokens=False)["input_ids"]
    expected = log_softmax_at_each_step(model, prompt_ids(tokenizer, PROMPT), new)
    assert len(logprobs.token_logprobs) == len(new) == answer.usage.completion_tokens
    for step, token in enumerate(new):
        assert logprobs.token_logprobs[step] == pytest.approx(float(expected[step, token]), abs=1e-4)
        top = expected[step].topk(3)
        alternatives = logprobs.top_logprobs[step]
        assert sorted(alternatives.values(), reverse=True) == pytest.approx(top.values.tolist(), abs=1e-4)
        assert logprobs.token_logprobs[step] == pytest.approx(max(alternatives.values()), abs=1e-6)  # greedy
    assert "".join(logprobs.tokens) == answer.choices[0].text
    assert logprobs.text_offset == [sum(len(t) for t in logprobs.tokens[:i]) for i in range(len(new))]


@pytest.mark.parametrize("stream", [False, True])
def test_sampled_chat_logprobs_are_taken_after_the_temperature(client, reference, stream):
    model, tokenizer = reference
    request = dict(model="base", messages=HELLO, max_tokens=10, temperature=0.7, seed=5, logprobs=True,
                   top_logprobs=2)
    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True))
        content = [entry for chunk in chunks if chunk.choices and chunk.choices[0].logprobs
                   for entry in chunk.choices[0].logprobs.content]
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        answer = client.chat.completions.create(**request)
        content, text = answer.choices[0].logprobs.content, answer.choices[0].message.content
    unary = client.chat.completions.create(**request)
    assert [(e.token, e.logprob) for e in content] == [(e.token, e.logprob) for e in unary.choices[0].logprobs.content]
    assert text == unary.choices[0].message.content
    # The plain template: the tiny tokenizer has no chat template.
    chat_ids = [tokenizer.eos_token_id, *tokenizer("System: You are brief.\nUser: Tell me about the sea.\n"
                                                   "Assistant:", add_special_tokens=False)["input_ids"]]
    new = token_ids(tokenizer, content)
    expected = log_softmax_at_each_step(model, chat_ids, new, temperature=0.7)
    for step, (entry, token) in enumerate(zip(content, new)):
        assert entry.logprob == pytest.approx(float(expected[step, token]), abs=1e-4)
        assert [t.logprob for t in entry.top_logprobs] == pytest.approx(expected[step].topk(2).values.tolist(),
                                                                        abs=1e-4)
        assert bytes(entry.bytes).decode(errors="replace") == entry.token


def test_a_top_p_that_rounds_to_zero_keeps_the_most_likely_token(client):
    greedy = client.completions.create(model="base", prompt=PROMPT, max_tokens=6, temperature=0)
    narrowest = client.completions.create(model="base", prompt=PROMPT, max_tokens=6, temperature=1, top_p=5e-324)
    assert narrowest.choices[0].text == greedy.choices[0].text


def test_without_logprobs_there_are_none(client):
    answer = client.chat.completions.create(model="base", messages=HELLO, max_tokens=4, temperature=0)
    assert answer.choices[0].logprobs is None


def test_n_choices_each_sample_with_seed_plus_index(client):
    request = dict(model="base", prompt=PROMPT, max_tokens=8, temperature=1.0, seed=11)
    together = client.completions.create(**request, n=3)
    assert [choice.index for choice in together.choices] == [0, 1, 2]
    alone = [client.completions.create(**{**request, "seed": 11 + i}).choices[0] for i in range(3)]
    assert [c.text for c in together.choices] == [c.text for c in alone]
    assert [c.finish_reason for c in together.choices] == [c.finish_reason for c in alone]
    assert len({c.text for c in together.choices}) > 1  # they are sampled, not copied
    usages = [client.completions.create(**{**request, "seed": 11 + i}).usage for i in range(3)]
    assert together.usage.completion_tokens == sum(usage.completion_tokens for usage in usages)
    assert together.usage.prompt_tokens == usages[0].prompt_tokens  # the prompt counts once


def test_streamed_choices_are_tagged_with_their_index_and_match_the_unary_ones(client):
    request = dict(model="base", messages=HELLO, max_tokens=8, temperature=0.9, seed=3, n=4)
    unary = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    texts, finishes = {}, {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {c.index: c.message.content for c in unary.choices}
    assert finishes == {c.index: c.finish_reason for c in unary.choices}
    assert chunks[-1].usage.completion_tokens == unary.usage.completion_tokens


def test_greedy_choices_are_all_the_greedy_answer(client):
    answer = client.chat.completions.create(model="base", messages=HELLO, max_tokens=8, temperature=0, n=2)
    assert answer.choices[0].message.content == answer.choices[1].message.content


@pytest.mark.parametrize("presence, frequency", [(0.0, 2.0), (1.5, 0.0), (-1.0, 0.5)])
def test_penalties_change_the_logits_as_openai_documents(client, reference, presence, frequency):
    model, tokenizer = reference
    answer = client.completions.create(model="base", prompt=PROMPT, max_tokens=16, temperature=0, logprobs=0,
                                       presence_penalty=presence, frequency_penalty=frequency)
    new = tokenizer(answer.choices[0].text, add_special_tokens=False)["input_ids"]
    expected = log_softmax_at_each_step(model, prompt_ids(tokenizer, PROMPT), new, penalties=(presence, frequency))
    assert new == expected.argmax(-1).tolist()  # each token is the greedy choice of the penalized logits
    assert answer.choices[0].logprobs.token_logprobs == pytest.approx(
        [float(expected[step, token]) for step, token in enumerate(new)], abs=1e-4)


def test_a_frequency_penalty_cuts_repetition(client):
    plain = client.completions.create(model="base", prompt=PROMPT, max_tokens=40, temperature=0)
    penalized = client.completions.create(model="base", prompt=PROMPT, max_tokens=40, temperature=0,
                                          frequency_penalty=2)

    def repeats(text: str) -> int:
        words = text.split()
        return len(words) - len(set(words))

    assert repeats(penalized.choices[0].text) < repeats(plain.choices[0].text)
    streamed = client.completions.create(model="base", prompt=PROMPT, max_tokens=40, temperature=0,
                                         frequency_penalty=2, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == penalized.choices[0].text


def test_usage_reports_the_prompt_tokens_the_prefix_cache_saved(client):
    messages = [{"role": "user", "content": "the tide came in over the sand " * 8}]
    first = client.chat.completions.create(model="base", messages=messages, max_tokens=2, temperature=0)
    again = client.chat.completions.create(model="base", messages=messages, max_tokens=2, temperature=0)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached < again.usage.prompt_tokens and cached % 16 == 0  # whole blocks, the last token recomputed


def test_the_async_client_gets_choices_and_logprobs(client, gateway):
    async def ask():
        async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as made:
            return await made.chat.completions.create(model="base", messages=HELLO, max_tokens=6, temperature=0,
                                                      n=2, logprobs=True, top_logprobs=1)

    answer = asyncio.run(ask())
    assert len(answer.choices) == 2 and all(len(c.logprobs.content) == answer.usage.completion_tokens // 2
                                            for c in answer.choices)
    assert all(math.isfinite(e.logprob) and e.logprob <= 0 for e in answer.choices[0].logprobs.content)


def test_tokenize_and_detokenize_as_vllm_answers_them(gateway, reference):
    _, tokenizer = reference
    text = "The ship came into the harbour."
    tokenized = httpx.post(f"{gateway.url}/tokenize", json={"prompt": text, "return_token_strs": True}).json()
    assert tokenized["tokens"] == tokenizer(text)["input_ids"] and tokenized["count"] == len(tokenized["tokens"])
    assert tokenized["max_model_len"] == 1024 and "".join(tokenized["token_strs"]) == text
    chat = httpx.post(f"{gateway.url}/tokenize", json={"model": "base", "messages": HELLO}).json()
    served = httpx.post(f"{gateway.url}/v1/chat/completions",
                        json={"model": "base", "messages": HELLO, "max_tokens": 1}).json()
    assert chat["count"] == served["usage"]["prompt_tokens"]  # what the chat endpoint reads
    back = httpx.post(f"{gateway.url}/detokenize", json={"tokens": tokenized["tokens"]}).json()
    assert back == {"prompt": text}


@pytest.mark.parametrize("path, body, status, words", [
    ("/tokenize", {}, 400, "exactly one of prompt and messages must be set (got neither)"),
    ("/tokenize", {"prompt": "x", "messages": HELLO}, 400, "exactly one of prompt and messages must be set"),
    ("/tokenize", {"prompt": "x", "model": "nope"}, 404, "nope"),
    ("/tokenize", {"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role must be one of"),
    ("/detokenize", {"tokens": [5, 2000]}, 400, "tokens[1] must be a token id below 2000"),
])
def test_tokenizer_errors_name_the_problem(gateway, path, body, status, words):
    response = httpx.post(f"{gateway.url}{path}", json=body)
    assert response.status_code == status and words in response.json()["message"]
