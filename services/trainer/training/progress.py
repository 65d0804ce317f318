"""Training progress: a transformers TrainerCallback that turns trainer state into Progress reports and keeps the
loss or reward curve, and each step's logged figures under the names OpenAI's fine-tuning metrics give them."""
import dataclasses
import time
from collections.abc import Callable

from transformers import TrainerCallback


@dataclasses.dataclass
class Progress:
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    reward: float | None = None
    eta_seconds: float | None = None
    message: str = ""
    metrics: dict[str, float] | None = None  # set on the report of a step's (or an evaluation's) logged figures
    note_level: str | None = None  # set when `message` is also worth an event of its own: "info" or "warn"


Report = Callable[[Progress], None]

# The logged values kept as metrics, by transformers' (and trl's) names, under OpenAI's fine-tuning metrics' names
# where OpenAI has one. DPO's reward margin and accuracy are the preferred answer's gain over the rejected one's,
# each against the reference. GRPO's share of flat groups; with skip_uniform_groups, the prompts skipped per trained
# group and whether the group trained was flat all the same; each grader's mean score (grader_<name>, below).
LOGGED_METRICS = {"loss": "train_loss", "mean_token_accuracy": "train_mean_token_accuracy", "eval_loss": "valid_loss",
                  "eval_mean_token_accuracy": "valid_mean_token_accuracy", "reward": "reward",
                  "frac_reward_zero_std": "frac_reward_zero_std", "rewards/margins": "train_reward_margin",
                  "rewards/accuracies": "train_reward_accuracy", "eval_rewards/margins": "valid_reward_margin",
                  "eval_rewards/accuracies": "valid_reward_accuracy", "skipped_prompts": "skipped_prompts",
                  "trained_flat": "trained_flat", "eval_reward": "valid_reward"}


def metric_name(logged: str) -> str | None:
    """The metric a logged value is kept as, or None: GRPO's `rewards/<grader>/mean` is `grader_<grader>`, and
    `eval_rewards/<grader>/mean` (a validation file's prompts) `valid_grader_<grader>`."""
    for prefix, kept in (("rewards/", "grader_"), ("eval_rewards/", "valid_grader_")):
        if logged.startswith(prefix) and logged.endswith("/mean"):
            return f"{kept}{logged[len(prefix):-len('/mean')]}"
    return LOGGED_METRICS.get(logged)


def no_report(progress: Progress) -> None:
    """For callers that only want the progress bar transformers draws itself."""


class ProgressCallback(TrainerCallback):
    """Reports after every step; `metric` ("loss" or "reward") is the logged value that goes into the curve, with
    the logged values named in `extras` beside it."""

    def __init__(self, report: Report, metric: str, extras: tuple[str, ...] = ()) -> None:
        self.report = report
        self.metric = metric
        self.extras = extras
        self.curve: list[dict] = []
        self.metrics: dict[int, dict[str, float]] = {}  # step -> its figures (LOGGED_METRICS' names)
        self.progress = Progress()
        self._started = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.monotonic()
        self.progress = Progress(step=0, total_steps=state.max_steps, message="training")
        self.report(dataclasses.replace(self.progress))

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        value = logs.get(self.metric)
        if value is not None:
            self.curve.append({"step": state.global_step, self.metric: float(value),
                               **{key: float(logs[key]) for key in self.extras if logs.get(key) is not None}})
            setattr(self.progress, self.metric, float(value))
        figures = {name: float(value) for key, value in logs.items()
                   if (name := metric_name(key)) is not None and isinstance(value, (int, float))}
        if figures:
            self.metrics.setdefault(state.global_step, {}).update(figures)
        if value is not None or figures:
            self.report(dataclasses.replace(self.progress, metrics=figures or None))

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.monotonic() - self._started
        step, total = state.global_step, state.max_steps
        self.progress.step, self.progress.total_steps = step, total
        self.progress.eta_seconds = elapsed / step * (total - step) if step else None
        self.progress.message = f"step {step}/{total}"
        # transformers calls on_log after on_step_end for the same step, so on_log reports the new value again.
        self.report(dataclasses.replace(self.progress))

    def on_train_end(self, args, state, control, **kwargs):
        self.progress.eta_seconds = 0.0
        self.progress.message = "training done"
        self.report(dataclasses.replace(self.progress))
