"""From an LlmGenerateRequest message to the `Request` the engine decodes: validation, the prompt, the forced lead
of the answer, the token budget, and the context trimmed to the model's window."""
import asyncio
import concurrent.futures
import copy
import dataclasses
from typing import Annotated

from services.common.adapters import ADAPTER_NAMES, BASE
from services.common.errors import Violations, check_start_word, shown
from services.common.limits import Bound, from_request, out_of_range
from services.common.prompts import PREFIX, fit_context, qa_prompt
from services.llm.request import Request

MAX_QUESTION_CHARS = 2_000
MAX_CONTEXT_CHARS = 100_000
ADAPTER_CHOICES = ("", BASE, *ADAPTER_NAMES)  # "" lets the service choose (use_rl_model)


@dataclasses.dataclass(frozen=True)
class LlmParams:
    max_new_tokens: Annotated[int, Bound(1, 512)] = 80  # QA mode's budget; in text mode it caps length when set
    length: Annotated[int, Bound(1, 512)] = 40  # text mode's budget
    temperature: Annotated[float, Bound(0, 2.0)] = 0.0  # 0: greedy


def validate(message, violations: Violations) -> None:
    has_question, has_start = message.HasField("question"), message.HasField("start_word")
    if has_question == has_start:
        violations.add("question", "exactly one of question (QA mode) and start_word (text mode) must be set"
                       f" (got {'both' if has_question else 'neither'})")
    if has_question:
        if not message.question.strip():
            violations.add("question", "question must not be blank")
        elif len(message.question) > MAX_QUESTION_CHARS:
            violations.add("question", f"question must be at most {MAX_QUESTION_CHARS} characters "
                                       f"(got {len(message.question)})")
    if has_start:
        check_start_word(violations, message.start_word)
    if len(message.context) > MAX_CONTEXT_CHARS:
        violations.add("context", f"context must be at most {MAX_CONTEXT_CHARS} characters "
                                  f"(got {len(message.context)})")
    violations.add_all(out_of_range(from_request(LlmParams, message)))
    if message.adapter not in ADAPTER_CHOICES:
        violations.add("adapter", f"adapter must be one of {', '.join(map(repr, ADAPTER_CHOICES))} "
                                  f"(got {shown(message.adapter)})")


def token_budget(message) -> int:
    """QA mode: max_new_tokens (80). Text mode: length (40), capped by max_new_tokens when that is set too."""
    if message.HasField("question"):
        return message.max_new_tokens if message.HasField("max_new_tokens") else LlmParams.max_new_tokens
    length = message.length if message.HasField("length") else LlmParams.length
    return min(length, message.max_new_tokens) if message.HasField("max_new_tokens") else length


def plan(message, tokenizer, window: int) -> Request | Violations:
    """The request to decode, or the violations when the message cannot fit the model's window at all."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    budget = token_budget(message)
    warnings: list[str] = []
    common = dict(temperature=message.temperature if message.HasField("temperature") else LlmParams.temperature,
                  seed=message.seed if message.HasField("seed") else None)
    violations = Violations()
    if message.HasField("question"):
        lead_ids = encode(f" {PREFIX}")  # the completion SFT trains on starts with a space
        room = window - budget - len(lead_ids)
        context = fit_context(message.question, message.context, lambda prompt: len(encode(prompt)) <= room)
        if context is None:
            violations.add("question", f"the question does not fit the model's window of {window} tokens with "
                                       f"max_new_tokens={budget}; shorten it or lower max_new_tokens")
            return violations
        if context != message.context:
            warnings.append(f"context trimmed from {len(message.context.split())} to {len(context.split())} "
                            f"words (the end nearest the question kept) to fit the model's window of {window} "
                            "tokens")
        return Request(mode="qa", prompt_ids=encode(qa_prompt(message.question, context)) + lead_ids, lead=PREFIX,
                       max_new_tokens=budget, warnings=warnings, **common)
    lead = f"{PREFIX} {' '.join(message.start_word.split())}"
    # Text mode has no prompt of its own: the document starts at <|endoftext|>, then the forced lead.
    prompt_ids = [tokenizer.eos_token_id] + encode(lead)
    if len(prompt_ids) + budget > window:
        field = "length" if message.HasField("length") or not message.HasField("max_new_tokens") else "max_new_tokens"
        violations.add(field, f"{field} must be at most {window - len(prompt_ids)} for this start_word "
                              f"(the model's window is {window} tokens)")
        return violations
    return Request(mode="text", prompt_ids=prompt_ids, lead=lead, max_new_tokens=budget, warnings=warnings, **common)


class Planner:
    """Plans requests on a thread of its own, with its own copy of the tokenizer. The engine thread decodes with
    the original meanwhile, and a fast tokenizer's Rust state must not be used from two threads at once."""

    def __init__(self, tokenizer, window: int) -> None:
        self.tokenizer = copy.deepcopy(tokenizer)
        self.window = window
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-planner")

    async def plan(self, message) -> Request | Violations:
        return await self.run(plan, message)

    async def run(self, function, *args):
        """`function(*args, tokenizer, window)` on the planner's thread, with its tokenizer."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args, self.tokenizer,
                                                                self.window)
