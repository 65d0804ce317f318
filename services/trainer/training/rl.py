"""RL format alignment (the seed's /llm/train_rl): GRPO continuing the current SFT adapter on SQuAD's questions (or a
fixed set), graded by the preset of training/squad_grader.py through the same graders a user's reinforcement job
takes (training/graders)."""
import dataclasses

from services.common import adapters
from services.trainer.training import graders
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
from services.trainer.training.squad_grader import WEIGHTS, squad_grader

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
            item = graders.encode_item({"answers": list(example.answers)})
            rows.append({"prompt": prompt, graders.ITEM_COLUMN: item})
    return rows


@dataclasses.dataclass(frozen=True)
class RlStep:
    """GRPO on prompts (the fixed set, or SQuAD's training questions), continuing the current version of its
    from_adapter (an SFT adapter)."""
    params: RlParams
    kind = "rl"
    metric = "reward"
    # Each reward part's mean, and the share of groups whose answers all scored alike (they teach nothing).
    curve_extras = ("frac_reward_zero_std", *(f"rewards/{name}/mean" for name in WEIGHTS))
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
                                       "grader": squad_grader(self.params)},
                               curve_title=f"GRPO mean reward ({len(rows)} prompts, {self.params.steps} steps, "
                                           f"{self.params.prompts_per_step} a step)")

    def rewards(self) -> tuple[list, list[float]]:
        """trl's reward functions, one per named grader, and their weights in the same order."""
        return graders.reward_functions(graders.read_grader(squad_grader(self.params)))

    def settings(self) -> GrpoSettings:
        params = self.params
        return GrpoSettings(learning_rate=params.learning_rate, group_size=params.num_generations,
                            prompts_per_step=params.prompts_per_step, max_new_tokens=params.max_new_tokens,
                            temperature=params.temperature, reward_weights=self.rewards()[1], steps=params.steps,
                            skip_uniform_groups=params.skip_uniform_groups)

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        return grpo_trainer(loaded.model, loaded.tokenizer, loaded.rows, self.rewards()[0], self.settings(),
                            output_dir, placement, show_progress, callbacks)
