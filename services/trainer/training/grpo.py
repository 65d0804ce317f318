"""GRPO as every RL run here takes it (trl's GRPOTrainer): the seed's SQuAD RL (rl.py) and a user's graded prompts
(reinforcement.py) differ only in their prompts, reward functions and settings. Optionally a group whose answers all
score alike, which teaches nothing, is replaced by another prompt's (up to MAX_DRAWS a step), and the prompts skipped
are counted in the step's metrics."""
import dataclasses
import random

from services.common.devices import Placement
from services.trainer.training.models import device_options

MAX_DRAWS = 8  # groups sampled for one step when skipping uniform groups, the last trained whatever it scored


@dataclasses.dataclass(frozen=True)
class GrpoSettings:
    learning_rate: float
    group_size: int  # answers sampled per prompt
    prompts_per_step: int  # groups whose gradients make one optimizer step
    max_new_tokens: int
    temperature: float
    reward_weights: list[float]
    steps: int = -1  # -1: epochs decide
    epochs: int = 1
    seed: int = 0
    skip_uniform_groups: bool = False
    eval_interval: int | None = None  # steps between evaluations on the eval rows; None: after each epoch
    eval_samples: int | None = None  # answers sampled per eval prompt; None: group_size


def grpo_config(output_dir: str, settings: GrpoSettings, placement: Placement, show_progress: bool,
                evaluates: bool = False):
    from trl import GRPOConfig

    eval_samples = settings.eval_samples or settings.group_size
    return GRPOConfig(
        output_dir=output_dir, max_steps=settings.steps, num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        # One prompt per batch: GPT-2 with left-padded prompts of different lengths gets wrong position ids in
        # GRPO's log-prob pass (trl issue 6800).
        num_generations=settings.group_size, per_device_train_batch_size=settings.group_size,
        # Several prompts per optimizer step by accumulating one group at a time: still one prompt per batch, and
        # each group sampled from the weights of the step it trains (steps_per_generation 1: no stale samples).
        gradient_accumulation_steps=settings.prompts_per_step, steps_per_generation=1,
        # beta 0: when a trained adapter is trained further, trl's reference (the adapter disabled) is the base
        # model, and a KL to it would penalise what the adapter learnt before.
        max_completion_length=settings.max_new_tokens, temperature=settings.temperature, beta=0.0,
        reward_weights=settings.reward_weights,
        # An evaluation samples each eval prompt's answers as one batch, as training does.
        eval_strategy=("steps" if settings.eval_interval else "epoch") if evaluates else "no",
        eval_steps=settings.eval_interval, num_generations_eval=eval_samples, per_device_eval_batch_size=eval_samples,
        logging_steps=1, save_strategy="no", report_to=[],
        **device_options(placement), gradient_checkpointing=False, disable_tqdm=not show_progress,
        seed=settings.seed)


def grpo_trainer(model, tokenizer, rows: list[dict], reward_funcs: list, settings: GrpoSettings, output_dir: str,
                 placement: Placement, show_progress: bool, callbacks: list, eval_rows: list[dict] | None = None):
    from datasets import Dataset
    from trl import GRPOTrainer

    class SpreadGroups(GRPOTrainer):
        """Draws another prompt in place of a group whose answers all scored alike."""

        def _generate_and_score_completions(self, inputs):
            if not self.model.training:
                return super()._generate_and_score_completions(inputs)
            draws = random.Random(settings.seed + self.state.global_step)
            for draw in range(MAX_DRAWS):
                scored = super()._generate_and_score_completions(inputs)
                if bool(scored["advantages"].abs().max() > 0) or draw == MAX_DRAWS - 1:
                    break
                inputs = [rows[draws.randrange(len(rows))]] * len(inputs)
            self._metrics["train"]["skipped_prompts"].append(float(draw))
            self._metrics["train"]["trained_flat"].append(float(scored["advantages"].abs().max() == 0))
            return scored

    trainer_class = SpreadGroups if settings.skip_uniform_groups else GRPOTrainer
    args = grpo_config(output_dir, settings, placement, show_progress, evaluates=bool(eval_rows))
    return trainer_class(model=model, reward_funcs=reward_funcs, args=args, train_dataset=Dataset.from_list(rows),
                         eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None, processing_class=tokenizer,
                         callbacks=callbacks)
