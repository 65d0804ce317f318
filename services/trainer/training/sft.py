"""Supervised fine-tuning, one code path for every data set: rows of token ids and labels (training/token_rows.py)
into trl's SFTTrainer with a LoRA adapter. Two steps feed it: `SftStep`, the seed's /llm/train_sft (SQuAD rows
whose completion is the answer in the fixed format), and `training/fine_tune.py`'s, a user's chat examples."""
import dataclasses

from services.common.base_model import fingerprint, load_model, load_tokenizer
from services.common.devices import Placement
from services.trainer.training import pipeline
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import TRAIN_SHUFFLE_SEED, load_squad, sft_rows
from services.trainer.training.models import device_options, lora_config
from services.trainer.training.params import SftParams
from services.trainer.training.progress import Progress, Report
from services.trainer.training.token_rows import prompt_completion_row

BATCH_SIZE = 4  # the seed's SFT


@dataclasses.dataclass(frozen=True)
class SftSettings:
    """What SFT trains with, whatever its data."""
    num_train_epochs: int
    learning_rate: float
    lora_r: int
    max_length: int  # tokens a row may hold (rows are cut to it before, and trl would cut them again)
    batch_size: int = BATCH_SIZE
    seed: int = 0

    @classmethod
    def of(cls, params: SftParams) -> "SftSettings":
        return cls(params.num_train_epochs, params.learning_rate, params.lora_r, params.max_length)


def sft_config(output_dir: str, settings: SftSettings, placement: Placement, show_progress: bool,
               max_steps: int = -1, evaluates: bool = False, **overrides):
    from trl import SFTConfig

    return SFTConfig(**{**dict(
        output_dir=output_dir, num_train_epochs=settings.num_train_epochs, max_steps=max_steps,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, max_length=settings.max_length, logging_steps=1, save_strategy="no",
        eval_strategy="epoch" if evaluates else "no", report_to=[],
        include_num_input_tokens_seen="non_padding",  # params.json's trained_tokens
        # Checkpointing only slows small models down.
        **device_options(placement), gradient_checkpointing=False, disable_tqdm=not show_progress,
        seed=settings.seed,
    ), **overrides})


def build_trainer(model, tokenizer, rows: list[dict], settings: SftSettings, output_dir: str, placement: Placement,
                  *, use_lora: bool = True, eval_rows: list[dict] | None = None, show_progress: bool = False,
                  max_steps: int = -1, callbacks=(), extra_args: dict | None = None):
    """The trl SFTTrainer of every SFT run, the benchmarks' included, on token rows (`token_rows`). A model that
    is already a PeftModel (an adapter being trained further) keeps its adapter; otherwise a fresh LoRA adapter of
    rank settings.lora_r (use_lora=False: full fine-tuning). `extra_args`: SFTConfig settings of the benchmarks'
    variants."""
    from datasets import Dataset
    from peft import PeftModel
    from trl import SFTTrainer

    fresh_adapter = use_lora and not isinstance(model, PeftModel)
    return SFTTrainer(model=model, args=sft_config(output_dir, settings, placement, show_progress, max_steps,
                                                   evaluates=bool(eval_rows), **(extra_args or {})),
                      train_dataset=Dataset.from_list(rows),
                      eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None, processing_class=tokenizer,
                      peft_config=lora_config(settings.lora_r, model) if fresh_adapter else None,
                      callbacks=list(callbacks))


def squad_token_rows(tokenizer, rows: list[dict]) -> list[dict]:
    """SQuAD's prompt/completion rows (data.sft_rows) as the token rows SFT trains on."""
    return [prompt_completion_row(tokenizer, row["prompt"], row["completion"]) for row in rows]


@dataclasses.dataclass(frozen=True)
class SftStep:
    """A fresh LoRA adapter on the base model, trained on SQuAD rows whose completion is the answer in the fixed
    format; served to everyone, in the QA form."""
    params: SftParams
    kind = "sft"
    metric = "loss"
    curve_extras = ()
    owner = ""
    chat = False
    evaluates_squad = True

    @property
    def name(self) -> str:
        return self.params.adapter

    def load(self, context: TrainingContext, report: Report) -> pipeline.Loaded:
        report(Progress(message="loading data and model"))
        tokenizer = load_tokenizer(context.base)
        examples = load_squad(context.squad_dataset, "train", limit=self.params.max_examples,
                              sample_seed=TRAIN_SHUFFLE_SEED)
        rows = squad_token_rows(tokenizer, sft_rows(tokenizer, examples, self.params.max_length))
        if not rows:
            raise ValueError(f"none of the {len(examples)} training examples fits "
                             f"max_length={self.params.max_length} tokens")
        model = load_model(context.base)
        return pipeline.Loaded(model, tokenizer, rows, fingerprint(model.config),
                               record={"squad_dataset": context.squad_dataset, "training_rows": len(rows)},
                               curve_title=f"SFT loss ({len(rows)} examples, {self.params.num_train_epochs} epochs)")

    def trainer(self, loaded: pipeline.Loaded, output_dir: str, placement: Placement, show_progress: bool,
                callbacks: list):
        return build_trainer(loaded.model, loaded.tokenizer, loaded.rows, SftSettings.of(self.params), output_dir,
                             placement, show_progress=show_progress, callbacks=callbacks)
