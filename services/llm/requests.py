"""From an LlmGenerateRequest to what the engine decodes: validation, the prompt, the forced lead of the answer,
the token budget, and the context trimmed to the model's window."""
import asyncio
import concurrent.futures
import copy
import dataclasses
from typing import Annotated

from services.common.errors import Violations, check_start_word, shown
from services.common.limits import Bound, from_request, out_of_range
from services.common.prompts import PREFIX, fit_context, qa_prompt

MAX_QUESTION_CHARS = 2_000
MAX_CONTEXT_CHARS = 100_000
ADAPTER_CHOICES = ("", "base", "sft", "rl")


@dataclasses.dataclass(frozen=True)
class LlmParams:
    max_new_tokens: Annotated[int, Bound(1, 512)] = 80  # QA mode's budget; in text mode it caps length when set
    length: Annotated[int, Bound(1, 512)] = 40  # text mode's budget
    temperature: Annotated[float, Bound(0, 2.0)] = 0.0  # 0: greedy


@dataclasses.dataclass
class Plan:
    mode: str  # "qa" or "text"
    prompt_ids: list[int]
    lead: str
    max_new_tokens: int
    temperature: float
    seed: int | None
    warnings: list[str]


def validate(request, violations: Violations) -> None:
    has_question, has_start = request.HasField("question"), request.HasField("start_word")
    if has_question == has_start:
        violations.add("question", "exactly one of question (QA mode) and start_word (text mode) must be set"
                       f" (got {'both' if has_question else 'neither'})")
    if has_question:
        if not request.question.strip():
            violations.add("question", "question must not be blank")
        elif len(request.question) > MAX_QUESTION_CHARS:
            violations.add("question", f"question must be at most {MAX_QUESTION_CHARS} characters "
                                       f"(got {len(request.question)})")
    if has_start:
        check_start_word(violations, request.start_word)
    if len(request.context) > MAX_CONTEXT_CHARS:
        violations.add("context", f"context must be at most {MAX_CONTEXT_CHARS} characters "
                                  f"(got {len(request.context)})")
    violations.add_all(out_of_range(from_request(LlmParams, request)))
    if request.adapter not in ADAPTER_CHOICES:
        violations.add("adapter", f"adapter must be one of '', 'base', 'sft', 'rl' (got {shown(request.adapter)})")


def token_budget(request) -> int:
    """QA mode: max_new_tokens (80). Text mode: length (40), capped by max_new_tokens when that is set too."""
    if request.HasField("question"):
        return request.max_new_tokens if request.HasField("max_new_tokens") else LlmParams.max_new_tokens
    length = request.length if request.HasField("length") else LlmParams.length
    return min(length, request.max_new_tokens) if request.HasField("max_new_tokens") else length


def plan(request, tokenizer, window: int) -> Plan | Violations:
    """The decoding plan, or the violations when the request cannot fit the model's window at all."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    budget = token_budget(request)
    warnings: list[str] = []
    common = dict(temperature=request.temperature if request.HasField("temperature") else LlmParams.temperature,
                  seed=request.seed if request.HasField("seed") else None)
    violations = Violations()
    if request.HasField("question"):
        lead_ids = encode(f" {PREFIX}")  # the completion SFT trains on starts with a space
        room = window - budget - len(lead_ids)
        context = fit_context(request.question, request.context, lambda prompt: len(encode(prompt)) <= room)
        if context is None:
            violations.add("question", f"the question does not fit the model's window of {window} tokens with "
                                       f"max_new_tokens={budget}; shorten it or lower max_new_tokens")
            return violations
        if context != request.context:
            warnings.append(f"context trimmed from {len(request.context.split())} to {len(context.split())} "
                            f"words (the end nearest the question kept) to fit the model's window of {window} "
                            "tokens")
        return Plan("qa", encode(qa_prompt(request.question, context)) + lead_ids, PREFIX, budget,
                    warnings=warnings, **common)
    lead = f"{PREFIX} {' '.join(request.start_word.split())}"
    # Text mode has no prompt of its own: the document starts at <|endoftext|>, then the forced lead.
    prompt_ids = [tokenizer.eos_token_id] + encode(lead)
    if len(prompt_ids) + budget > window:
        field = "length" if request.HasField("length") or not request.HasField("max_new_tokens") else "max_new_tokens"
        violations.add(field, f"{field} must be at most {window - len(prompt_ids)} for this start_word "
                              f"(the model's window is {window} tokens)")
        return violations
    return Plan("text", prompt_ids, lead, budget, warnings=warnings, **common)


class Planner:
    """Plans requests on a thread of its own, with its own copy of the tokenizer. The engine thread decodes with
    the original meanwhile, and a fast tokenizer's Rust state must not be used from two threads at once."""

    def __init__(self, tokenizer, window: int) -> None:
        self.tokenizer = copy.deepcopy(tokenizer)
        self.window = window
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-planner")

    async def plan(self, request) -> Plan | Violations:
        return await asyncio.get_running_loop().run_in_executor(self._executor, plan, request, self.tokenizer,
                                                                self.window)
