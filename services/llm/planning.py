"""From an LlmGenerateRequest message to the `Request` the engine decodes: validation, the prompt, the forced lead
of the answer, the token budget, and the context trimmed to the model's window."""
import asyncio
import concurrent.futures
import copy
import dataclasses
from typing import Annotated

from services.common import adapters
from services.common.errors import Violations, check_start_word, shown
from services.common.limits import Bound, from_request, out_of_range
from services.common.prompts import PREFIX, fit_context, qa_prompt
from services.llm import constraints
from services.llm.endings import stop_at
from services.llm.request import Request
from services.llm.states import Mode

MAX_QUESTION_CHARS = 2_000
MAX_CONTEXT_CHARS = 100_000


@dataclasses.dataclass(frozen=True)
class LlmParams:
    max_new_tokens: Annotated[int, Bound(1, 512)] = 80  # QA mode's budget; in text mode it caps length when set
    length: Annotated[int, Bound(1, 512)] = 40  # text mode's budget
    temperature: Annotated[float, Bound(0, 2.0)] = 0.0  # 0: greedy


@dataclasses.dataclass(frozen=True)
class Sampling:
    temperature: float = LlmParams.temperature
    top_p: float = 1.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


def check_question(question: str, violations: Violations) -> None:
    if not question.strip():
        violations.add("question", "question must not be blank")
    elif len(question) > MAX_QUESTION_CHARS:
        violations.add("question", f"question must be at most {MAX_QUESTION_CHARS} characters (got {len(question)})")


def check_context(context: str, violations: Violations) -> None:
    if len(context) > MAX_CONTEXT_CHARS:
        violations.add("context", f"context must be at most {MAX_CONTEXT_CHARS} characters (got {len(context)})")


def validate(message, violations: Violations) -> None:
    """An LlmGenerateRequest's fields, checked."""
    has_question, has_start = message.HasField("question"), message.HasField("start_word")
    if has_question == has_start:
        violations.add("question", "exactly one of question (QA mode) and start_word (text mode) must be set"
                       f" (got {'both' if has_question else 'neither'})")
    if has_question:
        check_question(message.question, violations)
    if has_start:
        check_start_word(violations, message.start_word)
    if has_question and message.HasField("json_schema"):
        violations.add("json_schema", "json_schema is for text mode (start_word): QA mode's answers keep the answer "
                                      "format")
    check_context(message.context, violations)
    violations.add_all(out_of_range(from_request(LlmParams, message)))
    if message.adapter not in ("", adapters.BASE) and not adapters.is_valid_name(message.adapter):
        violations.add("adapter", "adapter must be empty (the service chooses by use_rl_model), 'base', or an "
                                  "adapter's name: letters, digits, '_', '-' and '.', at most 64 characters "
                                  f"(got {shown(message.adapter)})")


def token_budget(message) -> int:
    """QA mode: max_new_tokens (80). Text mode: length (40), capped by max_new_tokens when that is set too."""
    if message.HasField("question"):
        return message.max_new_tokens if message.HasField("max_new_tokens") else LlmParams.max_new_tokens
    length = message.length if message.HasField("length") else LlmParams.length
    return min(length, message.max_new_tokens) if message.HasField("max_new_tokens") else length


def plan(message, tokenizer, window: int) -> Request | Violations:
    """The request to decode for a validated LlmGenerateRequest, or the violations when it cannot fit the model's
    window at all."""
    sampling = Sampling(temperature=message.temperature if message.HasField("temperature") else LlmParams.temperature,
                        seed=message.seed if message.HasField("seed") else None)
    if message.HasField("question"):
        return plan_qa(message.question, message.context, token_budget(message), sampling, tokenizer, window)
    budget_field = "length" if message.HasField("length") or not message.HasField("max_new_tokens") \
        else "max_new_tokens"
    planned = plan_text(message.start_word, token_budget(message), budget_field, sampling, tokenizer, window)
    if message.HasField("json_schema") and isinstance(planned, Request):
        return held_to_json(planned, constraints.from_struct(message.json_schema), tokenizer)
    return planned


def json_matcher(schema: dict, field: str, tokenizer, violations: Violations) -> "constraints.JsonMatcher | None":
    """A matcher for output held to `schema`; None, with a violation naming `field`, when it cannot be compiled."""
    try:
        return constraints.grammars_for(tokenizer).matcher(schema)
    except constraints.SchemaRefused as refused:
        violations.add(field, f"{field} cannot be compiled into a grammar: {refused}")
        return None


def held_to_json(request: Request, schema: dict, tokenizer) -> Request | Violations:
    """Text mode held to `schema`: the answer is the JSON alone, which ends where the JSON does."""
    violations = Violations()
    request.constraint = json_matcher(schema, "json_schema", tokenizer, violations)
    if violations:
        return violations
    request.lead, request.ending = "", stop_at(())
    return request


def _encoder(tokenizer):
    return lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]


def plan_qa(question: str, context: str, budget: int, sampling: Sampling, tokenizer, window: int) \
        -> Request | Violations:
    """The question answered in the answer format from as much of `context` as the window holds with `budget`."""
    encode = _encoder(tokenizer)
    lead_ids = encode(f" {PREFIX}")  # the completion SFT trains on starts with a space
    room = window - budget - len(lead_ids)
    fitted = fit_context(question, context, lambda prompt: len(encode(prompt)) <= room)
    if fitted is None:
        violations = Violations()
        violations.add("question", f"the question does not fit the model's window of {window} tokens with "
                                   f"max_new_tokens={budget}; shorten it or lower max_new_tokens")
        return violations
    warnings = [] if fitted == context else [
        f"context trimmed from {len(context.split())} to {len(fitted.split())} words (the end nearest the question "
        f"kept) to fit the model's window of {window} tokens"]
    return Request(mode=Mode.QA, prompt_ids=encode(qa_prompt(question, fitted)) + lead_ids, lead=PREFIX,
                   max_new_tokens=budget, warnings=warnings, **dataclasses.asdict(sampling))


def plan_text(start_word: str, budget: int, budget_field: str, sampling: Sampling, tokenizer, window: int) \
        -> Request | Violations:
    """Text continued from the forced lead and `start_word`; `budget_field` is the field to blame when too long."""
    lead = f"{PREFIX} {' '.join(start_word.split())}"
    # Text mode has no prompt of its own: the document starts at <|endoftext|>, then the forced lead.
    prompt_ids = [tokenizer.eos_token_id] + _encoder(tokenizer)(lead)
    if len(prompt_ids) + budget > window:
        violations = Violations()
        violations.add(budget_field, f"{budget_field} must be at most {window - len(prompt_ids)} for this start_word "
                                     f"(the model's window is {window} tokens)")
        return violations
    return Request(mode=Mode.TEXT, prompt_ids=prompt_ids, lead=lead, max_new_tokens=budget,
                   **dataclasses.asdict(sampling))


class Planner:
    """Plans requests on a thread of its own, with its own copy of the tokenizer. The engine thread decodes with
    the original meanwhile, and a fast tokenizer's Rust state must not be used from two threads at once. Both APIs'
    servicers share it; it plans once the base model is loaded (`use`)."""

    def __init__(self) -> None:
        self.tokenizer, self.window = None, 0
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-planner")

    @property
    def ready(self) -> bool:
        return self.tokenizer is not None

    def use(self, tokenizer, window: int) -> None:
        """Plans for the loaded base model with this tokenizer and window from now on."""
        self.tokenizer, self.window = copy.deepcopy(tokenizer), window
        self._executor.submit(constraints.grammars_for, self.tokenizer)  # its token table, before any plan needs it

    async def plan(self, message) -> Request | Violations:
        return await self.run(plan, message)

    async def run(self, function, *args):
        """`function(*args, tokenizer, window)` on the planner's thread, with its tokenizer."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args, self.tokenizer,
                                                                self.window)
