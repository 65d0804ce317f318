"""RL format alignment: trl GRPO continuing the current SFT adapter, with graded format and answer rewards."""
import dataclasses

from services.common import adapters
from services.common.base_model import context_window, fingerprint, load_tokenizer
from services.common.devices import Placement
from services.trainer.training import pipeline
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import TRAIN_SHUFFLE_SEED, QAExample, fit_prompt, load_squad
from services.trainer.training.fixed_prompts import FIXED_PROMPTS
from services.trainer.training.grpo import GrpoSettings, grpo_trainer
from services.trainer.training.models import load_with_adapter
from services.trainer.training.params import RlParams
from services.trainer.training.progress import Progress, Report
from services.trainer.training.rewards import REWARD_FUNCTIONS

MAX_PROMPT_TOKENS = 384


class NoSftAdapter(RuntimeError):
    """RL continues the SFT adapter; there is none yet."""


def prompt_rows(tokenizer, examples: list[QAExample], max_new_tokens: int, positions: int) -> list[dict]:
    # GRPO no longer trims prompts (max_prompt_length is gone): prompt + completion must fit the model.
    budget = min(MAX_PROMPT_TOKENS, positions - max_new_tokens)
    rows = []
    for example in examples:
        prompt = fit_prompt(tokenizer, example, budget)
        if prompt is not None:
            rows.append({"prompt": prompt, "answers": list(example.answers)})
    return rows


@dataclasses.dataclass(frozen=True)
class RlStep:
    """GRPO on prompts (the fixed set, or SQuAD's training questions), continuing the current version of its
    from_adapter (an SFT adapter)."""
    params: RlParams
    kind = "rl"
    metric = "reward"
    # Each reward part's mean, and the share of groups whose answers all scored alike (they teach nothing).
    curve_extras = ("frac_reward_zero_std", *(f"rewards/{f.__name__}/mean" for f in REWARD_FUNCTIONS))
    owner = ""
    chat = False
    evaluates_squad = True

    @property
    def name(self) -> str:
        return self.params.adapter

    def load(self, context: TrainingContext, report: Report) -> pipeline.Loaded:
        sft_path = adapters.current_path(context.models_dir, self.params.from_adapter)
        if sft_path is None:
            raise NoSftAdapter(f"from_adapter {self.params.from_adapter!r} has no version published: run SFT first "
                               "(POST /llm/train_sft)")
        report(Progress(message="loading prompts and the SFT model"))
        tokenizer = load_tokenizer(context.base)
        if self.params.use_dataset_prompts:
            examples = load_squad(context.squad_dataset, "train", limit=self.params.max_prompt_examples,
                                  sample_seed=TRAIN_SHUFFLE_SEED, from_end=True)
        else:
            examples = FIXED_PROMPTS
        model = load_with_adapter(context.base, sft_path, trainable=True)
        base_fingerprint = fingerprint(model.config)  # before training, which changes a few of its settings
        rows = prompt_rows(tokenizer, examples, self.params.max_new_tokens, context_window(model.config))
        if not rows:
            raise ValueError("no RL prompt fits the model's context with max_new_tokens")
        return pipeline.Loaded(model, tokenizer, rows, base_fingerprint,
                               record={"sft_adapter": str(sft_path), "prompts": len(rows),
                                       "rewards": [f.__name__ for f in REWARD_FUNCTIONS]},
                               curve_title=f"GRPO mean reward ({len(rows)} prompts, {self.params.steps} steps, "
                                           f"{self.params.prompts_per_step} a step)")

    def settings(self) -> GrpoSettings:
        params = self.params
        return GrpoSettings(learning_rate=params.learning_rate, group_size=params.num_generations,
                            prompts_per_step=params.prompts_per_step, max_new_tokens=params.max_new_tokens,
                            temperature=params.temperature, reward_weights=params.reward_weights, steps=params.steps)

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        return grpo_trainer(loaded.model, loaded.tokenizer, loaded.rows, REWARD_FUNCTIONS, self.settings(),
                            output_dir, placement, show_progress, callbacks)
