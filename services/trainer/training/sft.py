"""Supervised fine-tuning: a LoRA adapter on LLM_BASE_MODEL that answers SQuAD questions in the fixed format."""
import dataclasses
import pathlib
import tempfile
from collections.abc import Callable

from services.common import adapters
from services.common.base_model import fingerprint, load_model, load_tokenizer
from services.common.devices import Placement
from services.trainer.training import distributed
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import load_squad, sft_rows
from services.trainer.training.models import device_options, lora_config
from services.trainer.training.params import SftParams
from services.trainer.training.progress import Progress, ProgressCallback, Report, no_report
from services.trainer.training.publishing import Publish, evaluate_staged, publish_and_notify
from services.trainer.training.reports import write_curve, write_json

BATCH_SIZE = 4


def sft_config(output_dir: str, params: SftParams, placement: Placement, show_progress: bool, max_steps: int = -1):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir, num_train_epochs=params.num_train_epochs, max_steps=max_steps,
        per_device_train_batch_size=BATCH_SIZE, learning_rate=params.learning_rate, max_length=params.max_length,
        completion_only_loss=True, logging_steps=1, save_strategy="no", report_to=[],
        # Checkpointing only slows small models down.
        **device_options(placement), gradient_checkpointing=False, disable_tqdm=not show_progress, seed=0,
    )


def build_trainer(model, tokenizer, rows: list[dict], params: SftParams, output_dir: str, placement: Placement, *,
                  use_lora: bool = True, show_progress: bool = False, max_steps: int = -1, callbacks=()):
    """The trl SFTTrainer used by the job, the CLI and the benchmark (use_lora=False: full fine-tuning)."""
    from datasets import Dataset
    from trl import SFTTrainer

    return SFTTrainer(model=model, args=sft_config(output_dir, params, placement, show_progress, max_steps),
                      train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=lora_config(params.lora_r, model) if use_lora else None, callbacks=list(callbacks))


def train_sft(params: SftParams, context: TrainingContext, report: Report = no_report, show_progress: bool = False,
              publish: Publish = publish_and_notify, on_staged: Callable[[pathlib.Path], None] = lambda path: None):
    """Trains, writes adapter + params.json + loss curve + eval.json into a staging folder, then `publish`es it.
    Returns the published version."""
    report(Progress(message="loading data and model"))
    base = context.base
    tokenizer = load_tokenizer(base)
    examples = load_squad(context.squad_dataset, "train", limit=params.max_examples, sample_seed=0)
    rows = sft_rows(tokenizer, examples, params.max_length)
    if not rows:
        raise ValueError(f"none of the {len(examples)} training examples fits max_length={params.max_length} tokens")
    model = load_model(base)
    base_fingerprint = fingerprint(model.config)  # before training, which changes a few of its settings
    staged = distributed.staging_on_main(context.models_dir, "sft", on_staged)
    main = staged is not None  # of several data-parallel processes, only the first writes and publishes
    progress = ProgressCallback(report if main else no_report, "loss")
    with tempfile.TemporaryDirectory(prefix="sft-") as scratch:
        trainer = build_trainer(model, tokenizer, rows, params, scratch, context.placement,
                                show_progress=show_progress and main, callbacks=[progress])
        trainer.train()
        trainer.save_model(str(staged or scratch))  # every process takes part; only the first writes
    if not main:
        return None
    write_json(staged / "params.json", {"kind": "sft", **dataclasses.asdict(params), "base_model": base.name,
                                        "squad_dataset": context.squad_dataset, "training_rows": len(rows)})
    adapters.write_base_record(staged, base.name, base_fingerprint)
    write_curve(staged, progress.curve, "loss", f"SFT loss ({len(rows)} examples, {params.num_train_epochs} epochs)")
    evaluate_staged(trainer.model, tokenizer, context, staged, report, progress.progress)
    return publish(context, "sft", staged)
