"""One generation request, from planning to its answer, in two parts (as vLLM v1 keeps its `Request` apart from the
engine's state):

- `Plan`, what the planner decides (services/llm/native/planning.py; services/llm/openai/planning.py for the
  OpenAI-compatible API): the mode, the prompt, the forced lead, the token budget, the sampling settings, where the
  text ends, the grammar the output is held to. Frozen once planned.
- `Request`, one plan on its way through the engine: what the servicer adds on the event loop before submitting it
  (the adapter version's slot, the call's deadline, the stream callback), what the engine adds (`on_done`; the
  scheduler stamps `submitted_at`), the one flag the event loop sets afterwards (`cancelled`), and everything the
  engine thread fills in while decoding, token by token. The plan's fields read through it, never written.

Nothing here imports torch: the scheduler and the planner use this module without it.
"""
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from services.llm.endings import ANSWER_FORMAT, Ending
from services.llm.states import Mode, StopReason

if TYPE_CHECKING:
    import torch

    from services.llm.constraints import JsonMatcher

NO_ADAPTER = "__base__"  # the slot of a row without an adapter


@dataclasses.dataclass(frozen=True)
class TokenLogprobs:
    """A generated token's log probability, from the logits that chose it (after penalties, the JSON mask and the
    temperature), and the most likely tokens there (`top`: (token id, log probability), most likely first)."""
    logprob: float
    top: list[tuple[int, float]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    prompt_ids: list[int]  # the prompt followed by the forced lead of the answer (never changed once planned)
    lead: str  # the text those forced tokens stand for ("That is a great question." ...)
    max_new_tokens: int
    mode: Mode = Mode.QA
    temperature: float = 0.0
    top_p: float = 1.0  # sampling draws from the most likely tokens whose probabilities reach top_p
    seed: int | None = None
    presence_penalty: float = 0.0  # subtracted once from the logit of every token generated so far
    frequency_penalty: float = 0.0  # subtracted from it once per time it was generated
    top_k: int = 0  # sampling draws from the k most likely tokens only; 0: from all
    min_p: float = 0.0  # sampling leaves out the tokens less likely than min_p times the most likely one's
    repetition_penalty: float = 1.0  # divides the positive logits (multiplies the negative) of the tokens seen
    top_logprobs: int | None = None  # None: no log probabilities; else each token's and this many alternatives'
    grammar: "JsonMatcher | None" = None  # held to JSON or tool calls: the matcher in its first state (each request
    # copies it)
    reads_tool_calls: bool = False  # the answer's text is read as tool calls (services/llm/openai/tools.py)
    ending: Ending = ANSWER_FORMAT
    warnings: tuple[str, ...] = ()  # said in the response's warning

    def __post_init__(self) -> None:
        object.__setattr__(self, "warnings", tuple(self.warnings))


def _planned(field: str) -> property:
    return property(lambda request: getattr(request.plan, field), doc=f"The plan's {field}.")


@dataclasses.dataclass(eq=False, kw_only=True)
class Request:
    plan: Plan
    # Set on the event loop before the request is submitted:
    slot: str = NO_ADAPTER
    deadline: float | None = None  # time.monotonic() value
    on_text: Callable[[str], None] | None = None  # called from the engine thread with each safe new piece
    on_done: Callable[[], None] | None = None  # called from the engine thread once the request is finished
    submitted_at: float = 0.0  # time.monotonic() values, for the queue and time-to-first-token metrics
    # Set on the event loop once the caller has gone; read by the engine thread at its next step:
    cancelled: bool = False
    # Filled in by the engine thread while decoding:
    constraint: "JsonMatcher | None" = None  # the tokens the grammar allows next: the plan's matcher, advanced
    generated: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[TokenLogprobs] = dataclasses.field(default_factory=list)  # one per generated token, when asked
    body: str = ""
    sent: int = 0
    stop_reason: StopReason | None = None  # set once, when the request is done
    error: Exception | None = None
    generator: "torch.Generator | None" = None  # set by decoding when the request samples
    cached_tokens: int = 0  # prompt tokens whose keys and values came from the prefix cache, not the prefill
    first_token_at: float | None = None

    def __post_init__(self) -> None:
        if self.constraint is None and self.plan.grammar is not None:
            self.constraint = self.plan.grammar.copy()

    prompt_ids, lead, max_new_tokens, mode = (_planned(name) for name in ("prompt_ids", "lead", "max_new_tokens",
                                                                           "mode"))
    temperature, top_p, seed, top_logprobs = (_planned(name) for name in ("temperature", "top_p", "seed",
                                                                           "top_logprobs"))
    presence_penalty, frequency_penalty = _planned("presence_penalty"), _planned("frequency_penalty")
    top_k, min_p, repetition_penalty = (_planned(name) for name in ("top_k", "min_p", "repetition_penalty"))
    ending, warnings, reads_tool_calls = _planned("ending"), _planned("warnings"), _planned("reads_tool_calls")

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def tokens_held(self) -> int:
        """The most KV-cache positions this request can come to hold."""
        return len(self.prompt_ids) + self.max_new_tokens

    def sibling(self, index: int) -> "Request":
        """Choice `index` of the same plan, before either decodes: its own seed (seed + index), grammar state and
        results."""
        seed = None if self.plan.seed is None else self.plan.seed + index
        return Request(plan=dataclasses.replace(self.plan, seed=seed), slot=self.slot)

    def final_text(self) -> tuple[str, bool]:
        body, completed = self.ending.final(self.body)
        return self.lead + body, completed

    def check_interrupts(self, now: float) -> None:
        if self.cancelled:
            self.stop_reason = StopReason.CANCELLED
        elif self.deadline is not None and now >= self.deadline:
            self.stop_reason = StopReason.DEADLINE
