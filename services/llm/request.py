"""One generation request, from planning to its answer: the one object the planner, the servicer, the scheduler
and the decoding all work on (as vLLM v1 keeps its `Request` apart from the engine).

The planner (services/llm/planning.py; services/llm/openai/planning.py for the OpenAI-compatible API) decides the
mode, the prompt, the forced lead, the token budget, the sampling settings and where the text ends; the servicer
adds what only it knows (the adapter version's slot, the call's deadline, the stream callback); the engine adds
`on_done`; the scheduler stamps `submitted_at`; decoding fills in the rest, token by token. Nothing here imports
torch: the scheduler and the planner use this module without it.
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


@dataclasses.dataclass(eq=False, kw_only=True)
class Request:
    # Decided by the planner:
    prompt_ids: list[int]  # the prompt followed by the forced lead of the answer
    lead: str  # the text those forced tokens stand for ("That is a great question." ...)
    max_new_tokens: int
    mode: Mode = Mode.QA
    temperature: float = 0.0
    top_p: float = 1.0  # sampling draws from the most likely tokens whose probabilities reach top_p
    seed: int | None = None
    presence_penalty: float = 0.0  # subtracted once from the logit of every token generated so far
    frequency_penalty: float = 0.0  # subtracted from it once per time it was generated
    top_logprobs: int | None = None  # None: no log probabilities; else each token's and this many alternatives'
    constraint: "JsonMatcher | None" = None  # the tokens it allows next, when the output is held to JSON
    ending: Ending = ANSWER_FORMAT
    warnings: list[str] = dataclasses.field(default_factory=list)  # said in the response's warning
    # Set by the servicer and the engine:
    slot: str = NO_ADAPTER
    deadline: float | None = None  # time.monotonic() value
    on_text: Callable[[str], None] | None = None  # called from the engine thread with each safe new piece
    on_done: Callable[[], None] | None = None  # called from the engine thread once the request is finished
    cancelled: bool = False
    # Filled in while decoding:
    generated: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[TokenLogprobs] = dataclasses.field(default_factory=list)  # one per generated token, when asked
    body: str = ""
    sent: int = 0
    stop_reason: StopReason | None = None  # set once, when the request is done
    error: Exception | None = None
    generator: "torch.Generator | None" = None  # set by decoding when the request samples
    cached_tokens: int = 0  # prompt tokens whose keys and values came from the prefix cache, not the prefill
    submitted_at: float = 0.0  # time.monotonic() values, for the queue and time-to-first-token metrics
    first_token_at: float | None = None

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def tokens_held(self) -> int:
        """The most KV-cache positions this request can come to hold."""
        return len(self.prompt_ids) + self.max_new_tokens

    def sibling(self, index: int) -> "Request":
        """Choice `index` of the same planned request, before either decodes: its own seed (seed + index), grammar
        state and results."""
        return dataclasses.replace(self, seed=None if self.seed is None else self.seed + index,
                                   constraint=self.constraint.copy() if self.constraint else None,
                                   warnings=list(self.warnings), generated=[], logprobs=[])

    def final_text(self) -> tuple[str, bool]:
        body, completed = self.ending.final(self.body)
        return self.lead + body, completed

    def check_interrupts(self, now: float) -> None:
        if self.cancelled:
            self.stop_reason = StopReason.CANCELLED
        elif self.deadline is not None and now >= self.deadline:
            self.stop_reason = StopReason.DEADLINE
