"""What both APIs' planners share (services/llm/native/planning.py, services/llm/openai/planning.py): the thread
they plan on, the checks of a question and a context, the sampling settings, output held to a JSON Schema, and the
question answered in the answer format (the native API's QA mode, and an OpenAI chat with an adapter asked in the QA
form)."""
import asyncio
import concurrent.futures
import copy
import dataclasses

from services.common.errors import Violations
from services.common.prompts import PREFIX, fit_context, qa_prompt
from services.llm import constraints
from services.llm.request import Plan
from services.llm.states import Mode

MAX_QUESTION_CHARS = 2_000
MAX_CONTEXT_CHARS = 100_000


@dataclasses.dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # greedy
    top_p: float = 1.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_k: int = 0  # 0: every token
    min_p: float = 0.0
    repetition_penalty: float = 1.0


def check_question(question: str, violations: Violations) -> None:
    if not question.strip():
        violations.add("question", "question must not be blank")
    elif len(question) > MAX_QUESTION_CHARS:
        violations.add("question", f"question must be at most {MAX_QUESTION_CHARS} characters (got {len(question)})")


def check_context(context: str, violations: Violations) -> None:
    if len(context) > MAX_CONTEXT_CHARS:
        violations.add("context", f"context must be at most {MAX_CONTEXT_CHARS} characters (got {len(context)})")


def json_matcher(schema: dict, field: str, tokenizer, violations: Violations) -> "constraints.JsonMatcher | None":
    """A matcher for output held to `schema`; None, with a violation naming `field`, when it cannot be compiled."""
    try:
        return constraints.grammars_for(tokenizer).matcher(schema)
    except constraints.SchemaRefused as refused:
        violations.add(field, f"{field} cannot be compiled into a grammar: {refused}")
        return None


def encoder(tokenizer):
    return lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]


def plan_qa(question: str, context: str, budget: int, sampling: Sampling, tokenizer, window: int) \
        -> Plan | Violations:
    """The question answered in the answer format from as much of `context` as the window holds with `budget`."""
    encode = encoder(tokenizer)
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
    return Plan(mode=Mode.QA, prompt_ids=encode(qa_prompt(question, fitted)) + lead_ids, lead=PREFIX,
                max_new_tokens=budget, warnings=warnings, **dataclasses.asdict(sampling))


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

    async def run(self, function, *args):
        """`function(*args, tokenizer, window)` on the planner's thread, with its tokenizer."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args, self.tokenizer,
                                                                self.window)
