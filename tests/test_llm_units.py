"""The llm service's pure parts: the answer format and stop strings while streaming, context trimming, which adapter
folders the adapter catalog accepts, the planners' `Request`, chat prompts, and nucleus sampling."""
import subprocess
import sys

import pytest
import torch
from textgen.v1 import llm_pb2, openai_pb2

from services.common import adapters
from services.common.errors import Violations
from services.common.prompts import PREFIX, SUFFIX, fit_context, qa_prompt
from services.llm.native import planning
from services.llm.adapters.published import published_version
from services.llm.endings import ANSWER_FORMAT, stop_at
from services.llm.engine.sampling import nucleus
from services.llm.openai import planning as openai_planning
from services.common.chat_prompt import PLAIN_STOPS, chat_prompt, plain_template, qa_form
from services.common.openai_errors import OpenAiError
from services.llm.request import Plan, Request


@pytest.mark.parametrize(("body", "final", "completed"), [
    (" Paris. Let me know if you have any other questions.", " Paris. " + SUFFIX, False),
    (" Paris. Let me know if you have any other questions.\n\nQuestion:", " Paris. " + SUFFIX, False),
    (" Paris. Let me know if", " Paris. " + SUFFIX, True),
    (" Paris.  \n", " Paris. " + SUFFIX, True),
    ("", " " + SUFFIX, True),
])
def test_the_body_is_cut_at_the_suffix_or_completed(body, final, completed):
    assert ANSWER_FORMAT.final(body) == (final, completed)


def test_text_that_may_become_the_suffix_is_held_back_and_what_was_sent_is_never_taken_back():
    body = " Paris. Let me know if you have any other questions."
    sent = 0
    for end in range(1, len(body)):  # until the suffix is complete (then decoding cuts there instead)
        safe = ANSWER_FORMAT.safe_length(body[:end])
        sent = max(sent, safe)
    assert body[:sent] == " Paris."
    assert ANSWER_FORMAT.safe_length(" caf\ufffd") == len(" caf")
    for end in range(1, len(body) + 1):
        final, _ = ANSWER_FORMAT.final(body[:end])
        assert final.startswith(body[:ANSWER_FORMAT.safe_length(body[:end])])


def test_a_stop_string_ends_the_text_before_it_and_no_part_of_it_is_ever_sent():
    ending = stop_at(("\nUser:", "END"))
    text = "Fine, thanks.\nUser: and you?"
    sent = 0
    for end in range(1, len(text) + 1):
        if ending.end(text[:end]) is not None:
            break
        sent = max(sent, ending.safe_length(text[:end]))
    assert ending.end(text) == len("Fine, thanks.") and text[:sent] == "Fine, thanks."
    assert ending.end("a END b \nUser:") == 2  # the first of them
    assert ending.safe_length("caf\ufffd") == len("caf") and ending.final("caf\ufffd") == ("caf", False)
    assert stop_at(()).end(text) is None and stop_at(()).safe_length(text) == len(text)


def test_nucleus_sampling_keeps_the_most_likely_tokens_that_reach_top_p():
    probabilities = torch.tensor([0.1, 0.5, 0.15, 0.25])
    assert nucleus(probabilities, 0.7).tolist() == [0.0, 0.5, 0.0, 0.25]
    assert nucleus(probabilities, 0.01).tolist() == [0.0, 0.5, 0.0, 0.0]  # the most likely always stays
    assert nucleus(probabilities, 1.0).tolist() == probabilities.tolist()


def test_the_qa_form_and_the_plain_chat_template():
    assert qa_form("Context: Paris is the capital.\nQuestion: Which city?") == ("Which city?", "Paris is the capital.")
    assert qa_form("  Question: Why?\nAnswer:") == ("Why?", "")
    assert qa_form("Which city is the capital?") is None
    messages = [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Why?")]
    assert plain_template(messages) == "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Why?\nAssistant:"
    tokenizer = CharTokenizer()
    assert chat_prompt(tokenizer, messages) == ([0, *tokenizer(plain_template(messages))["input_ids"]], PLAIN_STOPS)


def test_the_context_is_trimmed_from_the_far_end_to_fit():
    context = " ".join(f"w{i}" for i in range(100))
    fits = lambda prompt: len(prompt.split()) <= 30  # noqa: E731
    trimmed = fit_context("Why?", context, fits)
    assert context.endswith(trimmed) and fits(qa_prompt("Why?", trimmed))
    assert not fits(qa_prompt("Why?", " ".join(context.split()[-len(trimmed.split()) - 1:])))
    assert fit_context("Why?", "short", fits) == "short"
    assert fit_context("Why? " * 40, context, fits) is None


def test_only_safetensors_adapters_inside_models_dir_trained_on_this_base_are_accepted(tmp_path):
    def published(base_fingerprint: str = "abc"):
        return published_version(tmp_path, "sft", base_fingerprint)

    assert published().error == "no version published"
    root = adapters.adapter_dir(tmp_path, "sft")
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "adapter_model.bin").write_bytes(b"pickle")
    (root / adapters.POINTER).write_text("v1\n")
    assert published().path is None and "safetensors" in published().error
    (root / adapters.POINTER).write_text("../../elsewhere\n")
    assert published().path is None and "invalid adapter version" in published().error
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / adapters.WEIGHTS).write_bytes(b"")
    (root / "v2").symlink_to(outside, target_is_directory=True)
    (root / adapters.POINTER).write_text("v2\n")
    assert published().path is None and "outside" in published().error
    (root / "v3").mkdir()
    (root / "v3" / adapters.WEIGHTS).write_bytes(b"")
    (root / adapters.POINTER).write_text("v3\n")
    assert published().path is None and "does not record the base model" in published().error
    adapters.write_base_record(root / "v3", "some base", "abc")
    assert published().path == root / "v3" and published().base_model == "some base"
    refused = published("xyz")
    assert refused.path is None and refused.base_model == "some base"
    assert "trained on base model some base" in refused.error


class CharTokenizer:
    """One token per character, 0 for <|endoftext|>, no chat template: enough for the planners."""
    eos_token, eos_token_id = "<|endoftext|>", 0
    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [ord(c) for c in text]}


def test_the_planner_returns_the_plan_the_engine_decodes():
    tokenizer = CharTokenizer()
    plan = planning.plan(llm_pb2.LlmGenerateRequest(question="Why?", context="Because.", temperature=0.5, seed=7),
                         tokenizer, window=1000)
    assert isinstance(plan, Plan)
    request = Request(plan=plan)
    assert (request.mode, request.lead, request.max_new_tokens) == ("qa", PREFIX, planning.LlmParams.max_new_tokens)
    assert request.prompt_ids == tokenizer(qa_prompt("Why?", "Because.") + f" {PREFIX}")["input_ids"]
    assert (request.temperature, request.seed, request.warnings) == (0.5, 7, ())
    assert request.tokens_held == len(request.prompt_ids) + request.max_new_tokens and not request.done
    text = planning.plan(llm_pb2.LlmGenerateRequest(start_word="Once", length=5), tokenizer, window=1000)
    assert (text.mode, text.lead, text.max_new_tokens, text.prompt_ids[0]) == ("text", f"{PREFIX} Once", 5, 0)
    trimmed = planning.plan(llm_pb2.LlmGenerateRequest(question="Why?", context="word " * 400, max_new_tokens=10),
                            tokenizer, window=300)
    assert len(trimmed.prompt_ids) + 10 <= 300 and trimmed.warnings[0].startswith("context trimmed from 400 to")
    too_long = planning.plan(llm_pb2.LlmGenerateRequest(start_word="Once", length=400), tokenizer, window=300)
    assert isinstance(too_long, Violations) and "length must be at most" in too_long.status().details


@pytest.mark.parametrize("adapter", ["", "base", "sft", "rl", "support-bot_2", "Legal.v1"])
def test_the_adapter_field_takes_any_adapter_name(adapter):
    violations = Violations()
    planning.validate(llm_pb2.LlmGenerateRequest(question="Why?", adapter=adapter), violations)
    assert not violations


@pytest.mark.parametrize("adapter", ["../models", "a/b", "-x", "x" * 65])
def test_an_adapter_field_that_could_not_be_a_folder_name_is_refused(adapter):
    violations = Violations()
    planning.validate(llm_pb2.LlmGenerateRequest(question="Why?", adapter=adapter), violations)
    assert violations.fields == ["adapter"] and "an adapter's name: letters, digits" in violations.status().details


def test_the_request_the_planner_and_the_scheduler_need_no_torch():
    code = ("import sys, services.llm.request, services.llm.planner, services.llm.native.planning, "
            "services.llm.engine.scheduler, "
            "services.llm.adapters.catalog; print(sorted(m for m in ('torch', 'transformers', "
            "'services.llm.engine.running_batch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_request_is_interrupted_by_cancellation_or_its_deadline_and_completes_its_answer():
    request = Request(plan=Plan(prompt_ids=[1, 2], lead=PREFIX, max_new_tokens=3), deadline=10.0)
    request.check_interrupts(9.0)
    assert not request.done
    request.check_interrupts(10.0)
    assert request.stop_reason == "deadline"
    cancelled = Request(plan=Plan(prompt_ids=[1], lead="", max_new_tokens=1), cancelled=True)
    cancelled.check_interrupts(0.0)
    assert cancelled.stop_reason == "cancelled"
    request.body = " Paris."
    assert request.final_text() == (f"{PREFIX} Paris. {SUFFIX}", True)


def test_a_chat_gets_the_rest_of_the_window_by_default_and_a_clear_error_past_it():
    chat = openai_pb2.ChatCompletionRequest(model="base", messages=[openai_pb2.ChatMessage(role="user")])
    chat.messages[0].content.string_value = "Hi"
    request = openai_planning.plan_chat(openai_planning.check_chat(chat), False, CharTokenizer(), window=100)
    assert (request.mode, request.lead, request.temperature) == ("chat", "", 1.0)  # OpenAI's default temperature
    assert request.max_new_tokens == 100 - len(request.prompt_ids)
    chat.max_tokens = 90
    with pytest.raises(OpenAiError) as error:
        openai_planning.plan_chat(openai_planning.check_chat(chat), False, CharTokenizer(), window=100)
    assert (error.value.code, error.value.param) == ("context_length_exceeded", "max_tokens")
    assert str(error.value) == (f"messages ({len(request.prompt_ids)} tokens) and max_tokens=90 exceed the model's "
                                "window of 100 tokens")
