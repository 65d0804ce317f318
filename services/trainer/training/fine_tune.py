"""Supervised fine-tuning on a user's chat examples (OpenAI's fine-tuning API): the SFT of training/sft.py on the
rows of an uploaded file, through the base model's chat template, training a fresh LoRA adapter or further training
the fine-tuned model the job names. The adapter belongs to the job's owner and is served as a chat model."""
import pathlib

from services.common.devices import Placement
from services.trainer.training import pipeline
from services.trainer.training.chat_format import read_examples
from services.trainer.training.context import TrainingContext
from services.trainer.training.fine_tune_params import LORA_R
from services.trainer.training.fine_tuning_step import FineTuningStep
from services.trainer.training.progress import Progress, Report
from services.trainer.training.sft import SftSettings, build_trainer
from services.trainer.training.token_rows import chat_rows


class FineTuneStep(FineTuningStep):
    metric = "loss"
    curve_extras = ("mean_token_accuracy",)

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
        start = self.starting_point(context)
        rows = self._rows(start.tokenizer, self.training_path, start.window, "training file", report)
        eval_rows = (self._rows(start.tokenizer, self.validation_path, start.window, "validation file", report)
                     if self.validation_path else None)
        return pipeline.Loaded(
            start.model, start.tokenizer, rows, start.base_fingerprint, eval_rows=eval_rows,
            record=self.record(rows, max_length=start.window),
            curve_title=f"fine-tuning loss ({len(rows)} examples, {self.params.n_epochs} epochs)")

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        settings = SftSettings(num_train_epochs=self.params.n_epochs, learning_rate=self.params.learning_rate,
                               lora_r=LORA_R, max_length=loaded.record["max_length"],
                               batch_size=self.params.batch_size, seed=self.params.seed)
        return build_trainer(loaded.model, loaded.tokenizer, loaded.rows, settings, output_dir, placement,
                             eval_rows=loaded.eval_rows, show_progress=show_progress, callbacks=callbacks)
