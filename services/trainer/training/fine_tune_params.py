"""A job of OpenAI's fine-tuning API (POST /v1/fine_tuning/jobs) as the trainer records it: the request's own fields,
its method ("supervised", "dpo" or "reinforcement") and that method's hyperparameters, each None for "auto" until
the training file is validated and `resolved` chooses it from the file's size. Ranges are declared here, once (the
request's reader and fine_tuning.proto's comments state them). Free of heavy imports.

The learning rates are LoRA rates, the multiplier times the method's base: full fine-tuning's usual 1e-5 teaches a
LoRA adapter nothing in a few dozen steps (docs/fine-tuning.md)."""
import dataclasses
import typing

from services.common.limits import Bound

SUPERVISED, DPO, REINFORCEMENT = "supervised", "dpo", "reinforcement"
METHODS = (SUPERVISED, DPO, REINFORCEMENT)
BASE_LEARNING_RATE = {SUPERVISED: 5e-4, DPO: 5e-5, REINFORCEMENT: 2e-4}
LORA_R = 16
GROUP_PER_COMPUTE = 8  # answers sampled per prompt at compute_multiplier 1

# Each method's hyperparameters, in the order OpenAI's job object shows them.
HYPERPARAMETERS = {
    SUPERVISED: ("n_epochs", "batch_size", "learning_rate_multiplier"),
    DPO: ("beta", "n_epochs", "batch_size", "learning_rate_multiplier"),
    REINFORCEMENT: ("n_epochs", "batch_size", "learning_rate_multiplier", "compute_multiplier", "temperature",
                    "max_completion_tokens", "eval_interval", "eval_samples"),
}
# hyperparameters that count something
WHOLE = ("n_epochs", "batch_size", "max_completion_tokens", "eval_interval", "eval_samples")


@dataclasses.dataclass(frozen=True)
class FineTuneParams:
    model: str  # as the request named it: the base, or the fine-tuned model it continues
    training_file: str
    adapter: str  # the fine-tuned model it publishes (its fine_tuned_model)
    validation_file: str = ""
    suffix: str = ""
    seed: int = 0
    method: str = SUPERVISED
    n_epochs: typing.Annotated[int | None, Bound(1, 50)] = None
    batch_size: typing.Annotated[int | None, Bound(1, 64)] = None
    learning_rate_multiplier: typing.Annotated[float | None, Bound(0, 10, low_open=True)] = None
    beta: typing.Annotated[float | None, Bound(0, 2, low_open=True)] = None  # dpo
    compute_multiplier: typing.Annotated[float | None, Bound(0.25, 4)] = None  # reinforcement: the group's size
    temperature: typing.Annotated[float | None, Bound(0, 2, low_open=True)] = None  # reinforcement
    max_completion_tokens: typing.Annotated[int | None, Bound(8, 256)] = None  # reinforcement
    skip_uniform_groups: bool = False  # reinforcement
    # reinforcement with a validation file: steps between its evaluations, and answers sampled per its prompts
    eval_interval: typing.Annotated[int | None, Bound(1, 10_000)] = None
    eval_samples: typing.Annotated[int | None, Bound(1, 32)] = None
    grader: dict | None = None  # reinforcement: OpenAI's grader object, as read (training/graders)
    from_adapter: str | None = None  # the adapter `model` names; None: the base model
    metadata: dict = dataclasses.field(default_factory=dict)  # the request's own pairs, shown back

    def resolved(self, examples: int) -> "FineTuneParams":
        """Each "auto" hyperparameter chosen for a training file of `examples` lines. Supervised and DPO: 3 epochs (up
        to 10 for a small file, so that it trains on about 300 examples in all), a batch of one in 25 of them (1 to
        8). Reinforcement: one pass, a prompt a step, groups of 8 at temperature 1, 64 tokens an answer; the validation
        prompts evaluated after each epoch, with as many answers each as a group."""
        chosen = dict(learning_rate_multiplier=self.learning_rate_multiplier or 1.0)
        if self.method == REINFORCEMENT:
            batch_size = self.batch_size or 1
            chosen.update(n_epochs=self.n_epochs or 1, batch_size=batch_size,
                          compute_multiplier=self.compute_multiplier or 1.0, temperature=self.temperature or 1.0,
                          max_completion_tokens=self.max_completion_tokens or 64,
                          eval_interval=self.eval_interval or max(1, -(-examples // batch_size)))
            chosen.update(eval_samples=self.eval_samples or dataclasses.replace(self, **chosen).group_size)
        else:
            chosen.update(n_epochs=self.n_epochs or max(3, min(10, -(-300 // max(1, examples)))),
                          batch_size=self.batch_size or max(1, min(8, examples // 25)))
        if self.method == DPO:
            chosen.update(beta=self.beta or 0.1)
        return dataclasses.replace(self, **chosen)

    @property
    def learning_rate(self) -> float:
        return BASE_LEARNING_RATE[self.method] * (self.learning_rate_multiplier or 1.0)

    @property
    def group_size(self) -> int:
        """Answers sampled per prompt: round(8 x compute_multiplier), 2 to 32."""
        return max(2, min(32, round(GROUP_PER_COMPUTE * (self.compute_multiplier or 1.0))))

    def shown_hyperparameters(self) -> dict[str, float | None]:
        """The method's hyperparameters by OpenAI's names (None: "auto")."""
        return {name: getattr(self, name) for name in HYPERPARAMETERS[self.method]}
