"""Preference fine-tuning (OpenAI's method "dpo"): trl's DPOTrainer on a user's preference pairs, through the base
model's chat template, training a fresh LoRA adapter or further training the fine-tuned model the job names. The
reference is the starting point without a second copy of the base: trl takes it with the fresh adapter disabled,
or from a frozen copy of the continued adapter ("ref"), and computes its log-probabilities once, before training.
Each step's loss, reward margin and accuracy (the share of pairs whose preferred answer the model now favours more
than the reference did) become the job's metrics events; with a validation file, the same after every epoch."""
from services.common.chat_prompt import chat_text
from services.common.devices import Placement
from services.trainer.training import pipeline
from services.trainer.training.context import TrainingContext
from services.trainer.training.fine_tune_params import LORA_R, FineTuneParams
from services.trainer.training.fine_tuning_step import FineTuningStep
from services.trainer.training.models import device_options, lora_config
from services.trainer.training.preference_format import Pair, read_pairs
from services.trainer.training.progress import Progress, Report


def preference_rows(tokenizer, pairs: list[Pair]) -> list[dict]:
    """trl's preference rows in text: the prompt as the llm service renders it to serve (the base model's chat
    template, or the plain one: services/common/chat_prompt.py), each answer after it; trl ends each answer with the
    end-of-text token, which ends the turn (SmolLM2's is its turn marker, <|im_end|>)."""
    return [{"prompt": chat_text(tokenizer, pair.prompt), "chosen": pair.preferred, "rejected": pair.rejected}
            for pair in pairs]


def dpo_config(output_dir: str, params: FineTuneParams, max_length: int, placement: Placement, show_progress: bool,
               evaluates: bool):
    from trl import DPOConfig

    return DPOConfig(
        output_dir=output_dir, num_train_epochs=params.n_epochs, per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size, learning_rate=params.learning_rate, beta=params.beta,
        max_length=max_length, precompute_ref_log_probs=True, logging_steps=1, save_strategy="no",
        eval_strategy="epoch" if evaluates else "no", report_to=[], **device_options(placement),
        include_num_input_tokens_seen="non_padding",  # the job's trained_tokens
        gradient_checkpointing=False, disable_tqdm=not show_progress, seed=params.seed)


class DpoStep(FineTuningStep):
    metric = "loss"
    curve_extras = ("rewards/margins", "rewards/accuracies")

    def load(self, context: TrainingContext, report: Report) -> pipeline.Loaded:
        report(Progress(message="loading the preference pairs and the model"))
        start = self.starting_point(context)
        rows = preference_rows(start.tokenizer, read_pairs(self.training_path))
        eval_rows = preference_rows(start.tokenizer, read_pairs(self.validation_path)) if self.validation_path else None
        return pipeline.Loaded(
            start.model, start.tokenizer, rows, start.base_fingerprint, eval_rows=eval_rows,
            record=self.record(rows, max_length=start.window),
            curve_title=f"DPO loss ({len(rows)} pairs, {self.params.n_epochs} epochs, beta {self.params.beta:g})")

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        from datasets import Dataset
        from peft import PeftModel
        from trl import DPOTrainer

        fresh_adapter = not isinstance(loaded.model, PeftModel)
        args = dpo_config(output_dir, self.params, loaded.record["max_length"], placement, show_progress,
                          evaluates=bool(loaded.eval_rows))
        return DPOTrainer(model=loaded.model, args=args, train_dataset=Dataset.from_list(loaded.rows),
                          eval_dataset=Dataset.from_list(loaded.eval_rows) if loaded.eval_rows else None,
                          processing_class=loaded.tokenizer,
                          peft_config=lora_config(LORA_R, loaded.model) if fresh_adapter else None,
                          callbacks=callbacks)
