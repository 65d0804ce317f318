"""Supervised fine-tuning on a user's chat examples (OpenAI's fine-tuning API): the SFT of training/sft.py on the
rows of an uploaded file, through the base model's chat template, training a fresh LoRA adapter or further training
the fine-tuned model the job names. The adapter belongs to the job's owner and is served as a chat model."""
import dataclasses
import pathlib

from services.common.base_model import context_window, fingerprint, load_tokenizer
from services.common.devices import Placement
from services.trainer.training import pipeline
from services.trainer.training.chat_format import read_examples
from services.trainer.training.context import TrainingContext
from services.trainer.training.models import load_with_adapter
from services.trainer.training.fine_tune_params import LORA_R, FineTuneParams
from services.trainer.training.progress import Progress, Report
from services.trainer.training.sft import SftSettings, build_trainer
from services.trainer.training.token_rows import chat_rows


@dataclasses.dataclass(frozen=True)
class FineTuneStep:
    params: FineTuneParams  # resolved: no "auto" left
    training_path: pathlib.Path
    validation_path: pathlib.Path | None
    from_path: pathlib.Path | None  # the current version of the fine-tuned model it continues; None: the base
    owner: str
    kind = "fine_tune"
    metric = "loss"
    curve_extras = ("mean_token_accuracy",)
    chat = True
    evaluates_squad = False

    @property
    def name(self) -> str:
        return self.params.adapter

    def _rows(self, tokenizer, path: pathlib.Path, max_length: int, what: str, report: Report) -> list[dict]:
        examples = read_examples(path)
        made = chat_rows(tokenizer, examples, max_length)
        for note in made.notes(len(examples), max_length):
            report(Progress(message=f"{what}: {note}", note_level="warn"))
        if not made.rows:
            raise ValueError(f"none of the {len(examples)} examples of the {what} can be trained on (see the "
                             "job's events)")
        return made.rows

    def load(self, context: TrainingContext, report: Report) -> pipeline.Loaded:
        report(Progress(message="loading the examples and the model"))
        tokenizer = load_tokenizer(context.base)
        model = load_with_adapter(context.base, self.from_path, trainable=True)
        base_fingerprint = fingerprint(model.config)  # before training, which changes a few of its settings
        max_length = min(context.fine_tune_max_tokens, context_window(model.config))
        rows = self._rows(tokenizer, self.training_path, max_length, "training file", report)
        eval_rows = (self._rows(tokenizer, self.validation_path, max_length, "validation file", report)
                     if self.validation_path else None)
        epochs = self.params.n_epochs
        return pipeline.Loaded(
            model, tokenizer, rows, base_fingerprint, eval_rows=eval_rows,
            record={"training_file": self.params.training_file, "training_rows": len(rows),
                    "trained_tokens": epochs * sum(len(row["input_ids"]) for row in rows),
                    "continued": str(self.from_path) if self.from_path else None, "max_length": max_length},
            curve_title=f"fine-tuning loss ({len(rows)} examples, {epochs} epochs)")

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        settings = SftSettings(num_train_epochs=self.params.n_epochs, learning_rate=self.params.learning_rate,
                               lora_r=LORA_R, max_length=loaded.record["max_length"],
                               batch_size=self.params.batch_size, seed=self.params.seed)
        return build_trainer(loaded.model, loaded.tokenizer, loaded.rows, settings, output_dir, placement,
                             eval_rows=loaded.eval_rows, show_progress=show_progress, callbacks=callbacks)
