"""Supervised fine-tuning: a LoRA adapter on LLM_BASE_MODEL that answers SQuAD questions in the fixed format."""
import dataclasses

from services.common.base_model import fingerprint, load_model, load_tokenizer
from services.common.devices import Placement
from services.trainer.training import pipeline
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import TRAIN_SHUFFLE_SEED, load_squad, sft_rows
from services.trainer.training.models import device_options, lora_config
from services.trainer.training.params import SftParams
from services.trainer.training.progress import Progress, Report

BATCH_SIZE = 4


def sft_config(output_dir: str, params: SftParams, placement: Placement, show_progress: bool, max_steps: int = -1,
               **overrides):
    from trl import SFTConfig

    return SFTConfig(**{**dict(
        output_dir=output_dir, num_train_epochs=params.num_train_epochs, max_steps=max_steps,
        per_device_train_batch_size=BATCH_SIZE, learning_rate=params.learning_rate, max_length=params.max_length,
        completion_only_loss=True, logging_steps=1, save_strategy="no", report_to=[],
        # Checkpointing only slows small models down.
        **device_options(placement), gradient_checkpointing=False, disable_tqdm=not show_progress, seed=0,
    ), **overrides})


def build_trainer(model, tokenizer, rows: list[dict], params: SftParams, output_dir: str, placement: Placement, *,
                  use_lora: bool = True, show_progress: bool = False, max_steps: int = -1, callbacks=(),
                  extra_args: dict | None = None):
    """The trl SFTTrainer used by the job, the CLI and the benchmarks (use_lora=False: full fine-tuning;
    `extra_args`: SFTConfig settings of the benchmarks' variants)."""
    from datasets import Dataset
    from trl import SFTTrainer

    return SFTTrainer(model=model, args=sft_config(output_dir, params, placement, show_progress, max_steps,
                                                   **(extra_args or {})),
                      train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=lora_config(params.lora_r, model) if use_lora else None, callbacks=list(callbacks))


@dataclasses.dataclass(frozen=True)
class SftStep:
    """A fresh LoRA adapter on the base model, trained on SQuAD rows whose completion is the answer in the fixed
    format."""
    params: SftParams
    kind = "sft"
    metric = "loss"
    curve_extras = ()

    @property
    def name(self) -> str:
        return self.params.adapter

    def load(self, context: TrainingContext, report: Report) -> pipeline.Loaded:
        report(Progress(message="loading data and model"))
        tokenizer = load_tokenizer(context.base)
        examples = load_squad(context.squad_dataset, "train", limit=self.params.max_examples,
                              sample_seed=TRAIN_SHUFFLE_SEED)
        rows = sft_rows(tokenizer, examples, self.params.max_length)
        if not rows:
            raise ValueError(f"none of the {len(examples)} training examples fits "
                             f"max_length={self.params.max_length} tokens")
        model = load_model(context.base)
        return pipeline.Loaded(model, tokenizer, rows, fingerprint(model.config),
                               record={"squad_dataset": context.squad_dataset, "training_rows": len(rows)},
                               curve_title=f"SFT loss ({len(rows)} examples, {self.params.num_train_epochs} epochs)")

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        return build_trainer(loaded.model, loaded.tokenizer, loaded.rows, self.params, output_dir, placement,
                             show_progress=show_progress, callbacks=callbacks)
