"""Reinforcement fine-tuning (OpenAI's method "reinforcement"): GRPO on a user's prompts, each group of sampled
answers scored by the job's grader (training/graders: string_check, text_similarity, or a multi's weighted sum, one
reward function per named grader so that each one's mean is logged), training a fresh LoRA adapter or further
training the fine-tuned model the job names. A validation file's prompts are answered and graded the same way every
eval_interval steps, and never trained on."""
import functools
import pathlib

from services.common.chat_prompt import chat_text
from services.common.devices import Placement
from services.trainer.training import graders, pipeline
from services.trainer.training.context import TrainingContext
from services.trainer.training.fine_tune_params import LORA_R
from services.trainer.training.fine_tuning_step import FineTuningStep
from services.trainer.training.grpo import GrpoSettings, grpo_trainer
from services.trainer.training.models import lora_config
from services.trainer.training.progress import Progress, Report
from services.trainer.training.prompt_format import read_prompts


def prompt_rows(tokenizer, path: pathlib.Path, budget: int, what: str, report: Report) -> list[dict]:
    """trl's prompt rows in text, as the llm service renders a chat to serve it (services/common/chat_prompt.py),
    with the item each grader reads; a prompt longer than `budget` tokens is left out, and counted in a warning."""
    prompts, rows = read_prompts(path), []
    for prompt in prompts:
        text = chat_text(tokenizer, prompt.messages)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= budget:
            rows.append({"prompt": text, graders.ITEM_COLUMN: graders.encode_item(prompt.item)})
    if len(rows) < len(prompts):
        report(Progress(message=f"{what}: {len(prompts) - len(rows)} of {len(prompts)} prompts leave no room for "
                                f"the answer's tokens in {budget} tokens and are left out", note_level="warn"))
    if not rows:
        raise ValueError(f"no prompt of the {what} fits the model's window with max_completion_tokens")
    return rows


class ReinforcementStep(FineTuningStep):
    metric = "reward"

    @functools.cached_property
    def rewards(self) -> tuple[list, list[float]]:
        """trl's reward functions, one per named grader, and their weights in the same order: the grader read once."""
        return graders.reward_functions(graders.read_grader(self.params.grader))

    @property
    def curve_extras(self) -> tuple[str, ...]:
        return ("frac_reward_zero_std", *(f"rewards/{function.__name__}/mean" for function in self.rewards[0]))

    def settings(self) -> GrpoSettings:
        params = self.params
        weights = self.rewards[1]
        return GrpoSettings(learning_rate=params.learning_rate, group_size=params.group_size,
                            prompts_per_step=params.batch_size, max_new_tokens=params.max_completion_tokens,
                            temperature=params.temperature, reward_weights=list(weights), epochs=params.n_epochs,
                            seed=params.seed, skip_uniform_groups=params.skip_uniform_groups,
                            eval_interval=params.eval_interval, eval_samples=params.eval_samples)

    def load(self, context: TrainingContext, report: Report) -> pipeline.Loaded:
        report(Progress(message="loading the prompts and the model"))
        start = self.starting_point(context)
        budget = start.window - self.params.max_completion_tokens
        rows = prompt_rows(start.tokenizer, self.training_path, budget, "training file", report)
        eval_rows = (prompt_rows(start.tokenizer, self.validation_path, budget, "validation file", report)
                     if self.validation_path else None)
        return pipeline.Loaded(
            start.model, start.tokenizer, rows, start.base_fingerprint, eval_rows=eval_rows,
            record=self.record(rows, grader=self.params.grader),
            curve_title=f"GRPO mean reward ({len(rows)} prompts, {self.params.n_epochs} epochs, groups of "
                        f"{self.params.group_size})")

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        from peft import PeftModel, get_peft_model

        model = loaded.model
        if not isinstance(model, PeftModel):
            model = get_peft_model(model, lora_config(LORA_R, model))
        return grpo_trainer(model, loaded.tokenizer, loaded.rows, self.rewards[0], self.settings(), output_dir,
                            placement, show_progress, callbacks, eval_rows=loaded.eval_rows)
