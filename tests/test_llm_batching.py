"""Continuous batching's parts, in process on tiny GPT-2 and Llama models: rows that join a running batch mid-way, or
leave it early, decode exactly the tokens they decode alone (greedy) and that transformers' `generate` decodes, with
their prompts prefilled whole or in chunks between the decoding rows' steps (and sampled rows draw the same tokens
either way); a row cancelled mid-prefill leaves with its keys and values, in process and when its caller goes away
from the engine; and the scheduler admits first come, first served within its bounds."""
import asyncio
import dataclasses
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from devtools.models import FACTS, RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, greedy_continuation, random_models_dir
from services.common import devices
from services.common.prompts import PREFIX, qa_prompt
from services.llm.config import LlmConfig
from services.llm.engine.core import Engine
from services.llm.engine.running_batch import RunningBatch
from services.llm.model.forward import serving_forward
from services.llm.engine.scheduler import QueueFull, Scheduler
from services.llm.request import Plan, Request


@pytest.fixture(scope="module", params=[RANDOM_GPT2, RANDOM_LLAMA])
def model_and_tokenizer(request, tmp_path_factory):
    """GPT-2's learned positions, and the embedded model's architecture: rotary positions, applied to the keys before
    they are cached, so a row's own position ids must survive left padding and merged caches."""
    models = random_models_dir(tmp_path_factory.mktemp("batching"))
    folder = build_tiny_llama(models / RANDOM_LLAMA) if request.param == RANDOM_LLAMA else models / RANDOM_GPT2
    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def rows(tokenizer, count: int, max_new_tokens: int = 24) -> list[Request]:
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    made = []
    for i in range(count):
        question, context, _ = FACTS[i % len(FACTS)]
        context = " ".join([context] * (1 + 3 * i))  # prompts of different lengths: different left padding
        made.append(Request(plan=Plan(prompt_ids=encode(qa_prompt(question, context)) + encode(f" {PREFIX}"),
                                      lead=PREFIX, max_new_tokens=max_new_tokens - 5 * (i % 3))))
    return made


def decode_alone(model, tokenizer, row: Request, chunk_tokens: int = 0) -> list[int]:
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode,
                         chunk_tokens=chunk_tokens)
    batch.admit([row])
    while batch:
        batch.step()
    return row.generated


# Chunks of 8 tokens: the prompts (45 to 213 tokens) take 6 to 27 steps each, so rows join while others are
# mid-prefill and rows decode between the chunks of others.
@pytest.mark.parametrize("chunk_tokens", [0, 8])
def test_rows_joining_and_leaving_mid_batch_decode_what_they_decode_alone(model_and_tokenizer, chunk_tokens):
    model, tokenizer = model_and_tokenizer
    alone = [decode_alone(model, tokenizer, row) for row in rows(tokenizer, 5)]
    assert alone == [greedy_continuation(model, tokenizer, row.prompt_ids, row.max_new_tokens)
                     for row in rows(tokenizer, 5)]
    together = rows(tokenizer, 5)
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode,
                         chunk_tokens=chunk_tokens)
    joins = {0: together[:2], 3: together[2:3], 7: together[3:]}  # at these steps, these rows arrive
    step, finished, joined_mid_prefill, decoded_beside_a_prefill = 0, [], False, False
    while step in joins or batch or step < max(joins):
        mid_prefill = any(batch.prefilling.computed(row) for row in batch.prefilling.rows)
        if step in joins:
            joined_mid_prefill |= mid_prefill
            batch.admit(joins[step])
        decoded_beside_a_prefill |= mid_prefill and bool(batch.rows)
        finished += batch.step().finished
        step += 1
    assert len(finished) == 5 and [row.generated for row in together] == alone
    assert all(len(g) >= 1 for g in alone)
    assert joined_mid_prefill == decoded_beside_a_prefill == bool(chunk_tokens)


def test_sampled_rows_draw_the_same_tokens_with_their_prompt_prefilled_whole_or_in_chunks(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer

    def sampled(chunk_tokens: int) -> list[int]:
        row = Request(plan=dataclasses.replace(rows(tokenizer, 5)[3].plan, temperature=1.5, seed=7))
        return decode_alone(model, tokenizer, row, chunk_tokens)

    assert sampled(0) == sampled(8) == sampled(3)


def test_a_row_cancelled_mid_prefill_leaves_with_its_keys_and_values(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    decoding, long = rows(tokenizer, 1)[0], rows(tokenizer, 5)[4]
    alone = decode_alone(model, tokenizer, rows(tokenizer, 1)[0])
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode, chunk_tokens=8)
    batch.admit([decoding])
    while not batch.rows:
        batch.step()
    batch.admit([long])
    for _ in range(2):
        batch.step()
    assert 0 < batch.prefilling.computed(long) < len(long.prompt_ids)
    long.cancelled = True
    batch.check_interrupts()
    assert batch.release_finished() == [long]
    assert long.stop_reason == "cancelled" and long.first_token_at is None and long.generated == []
    assert len(batch) == 1 and batch.prefilling.computed(long) == 0 and batch.tokens_held == decoding.tokens_held
    while batch:
        batch.step()
    assert decoding.generated == alone


def test_a_failed_prefill_ends_its_own_rows_and_the_decoding_rows_carry_on(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    decoding, alone = rows(tokenizer, 1)[0], decode_alone(model, tokenizer, rows(tokenizer, 1)[0])
    broken = Request(plan=Plan(prompt_ids=[10 ** 6] * 3, lead="", max_new_tokens=4))  # no such token: the embedding fails
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode)
    batch.admit([decoding])
    batch.step()
    batch.admit([broken])
    with pytest.raises(IndexError):
        batch.prefill()
    assert broken.stop_reason == "error" and isinstance(broken.error, IndexError)
    assert batch.release_finished() == [broken] and batch.rows == [decoding]
    while batch:
        batch.step()
    assert decoding.generated == alone


def test_a_request_whose_caller_goes_away_mid_prefill_frees_its_row(tmp_path):
    """Through the engine, as when a client disconnects: its prompt prefilled a token a step, the request is
    cancelled once some of it is in; the engine drops it, and its place, at the next step."""
    models = random_models_dir(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(models / RANDOM_GPT2)
    request = rows(tokenizer, 5)[4]

    async def scenario() -> Engine:
        config = LlmConfig(base_model=str(models / RANDOM_GPT2), models_dir=models, max_batch_size=8,
                           max_batch_tokens=8192, max_queued=8, batch_window_ms=0, prefix_cache_tokens=0,
                           torch_threads=1, prefill_chunk_tokens=1)
        engine = Engine(config, devices.resolve("cpu", "float32", "LLM"))
        assert await engine.load()
        decoding = asyncio.ensure_future(engine.submit(request))
        while not engine._batch.prefilling.computed(request):
            await asyncio.sleep(0.001)
        decoding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await decoding
        for _ in range(1000):
            if not engine.stats.in_flight:
                break
            await asyncio.sleep(0.01)
        return engine

    engine = asyncio.run(scenario())
    assert request.stop_reason == "cancelled" and request.first_token_at is None
    assert engine.stats.in_flight == 0 and len(engine._batch) == 0


def test_a_request_whose_first_token_cannot_be_chosen_fails_alone_and_the_engine_goes_on(tmp_path):
    """Sampling that cannot draw (a repetition penalty of 1e-300 divides the logits into infinities, which the API's
    bounds now refuse) fails its own request; the engine thread lives on (it died once on the first-token metric of
    such a request, and every request after it waited for good)."""
    models = random_models_dir(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(models / RANDOM_GPT2)
    healthy = rows(tokenizer, 1)[0]
    broken = Request(plan=dataclasses.replace(healthy.plan, temperature=1.0, repetition_penalty=1e-300))

    async def scenario() -> None:
        config = LlmConfig(base_model=str(models / RANDOM_GPT2), models_dir=models, max_batch_size=8,
                           max_batch_tokens=8192, max_queued=8, batch_window_ms=0, prefix_cache_tokens=0,
                           torch_threads=1)
        engine = Engine(config, devices.resolve("cpu", "float32", "LLM"))
        assert await engine.load()
        with pytest.raises(RuntimeError, match="probability tensor"):
            await asyncio.wait_for(engine.submit(broken), 30)
        assert (await asyncio.wait_for(engine.submit(healthy), 30)).generated

    asyncio.run(scenario())
    assert broken.stop_reason == "error" and healthy.stop_reason in ("length", "stop", "eos")


def test_the_cache_is_trimmed_when_the_longest_row_leaves(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    short, long = rows(tokenizer, 2)[0], Request(plan=dataclasses.replace(rows(tokenizer, 5)[4].plan, max_new_tokens=1))
    batch = RunningBatch(serving_forward(model), tokenizer.eos_token_id, tokenizer.decode)
    batch.admit([short, long])
    batch.prefill()
    width_with_long = batch.attention.shape[1]
    batch.release_finished()  # the long prompt had one token to make: it leaves
    assert batch.rows == [short]
    assert batch.attention.shape[1] == len(short.prompt_ids) < width_with_long
    assert batch.cache.layers[0].keys.shape[2] == batch.attention.shape[1]


def waiting(tokens: int) -> Request:
    return Request(plan=Plan(prompt_ids=[0] * (tokens - 10), lead="", max_new_tokens=10))


def test_admission_is_first_come_first_served_within_rows_and_tokens():
    scheduler = Scheduler(max_batch_size=3, max_batch_tokens=100, max_queued=10)
    a, b, c, d = waiting(50), waiting(60), waiting(20), waiting(20)
    for row in (a, b, c, d):
        scheduler.submit(row)
    assert scheduler.take(0, 0).admitted == [a]  # b does not fit beside a, and nothing overtakes it
    assert scheduler.take(1, 50).admitted == []
    assert scheduler.take(0, 0).admitted == [b, c, d]  # 100 tokens: exactly the bound
    huge = waiting(500)
    scheduler.submit(huge)
    assert scheduler.take(1, 20).admitted == [] and scheduler.take(0, 0).admitted == [huge]  # alone, not never


def test_the_waiting_line_is_bounded_once_the_batch_is_full():
    running = 0
    scheduler = Scheduler(max_batch_size=2, max_batch_tokens=10_000, max_queued=1, running_rows=lambda: running)
    for _ in range(3):  # two will take the free places, one waits
        scheduler.submit(waiting(20))
    with pytest.raises(QueueFull, match="LLM_MAX_QUEUED"):
        scheduler.submit(waiting(20))
    running = 2
    assert len(scheduler.take(2, 40).admitted) == 0 and len(scheduler) == 3


def test_cancelled_or_expired_waiting_requests_are_dropped_not_admitted():
    scheduler = Scheduler(max_batch_size=8, max_batch_tokens=10_000, max_queued=8)
    cancelled, expired, live = waiting(20), waiting(20), waiting(20)
    cancelled.cancelled, expired.deadline = True, time.monotonic() - 1
    for row in (cancelled, expired, live):
        scheduler.submit(row)
    taken = scheduler.take(0, 0)
    assert taken.admitted == [live] and taken.dropped == [cancelled, expired]
    assert (cancelled.stop_reason, expired.stop_reason) == ("cancelled", "deadline")
