"""What a fine-tuning job's step (OpenAI's API) is, whatever its method: the job's resolved params and files, the
model it starts from (the base, or the fine-tuned model it continues), and the adapter it publishes, its owner's and
served as a chat model. fine_tune.py (supervised), dpo.py and reinforcement.py add their data and their trainer."""
import dataclasses
import pathlib

from services.common.base_model import context_window, fingerprint, load_tokenizer
from services.trainer.training.context import TrainingContext
from services.trainer.training.fine_tune_params import FineTuneParams
from services.trainer.training.models import load_with_adapter


@dataclasses.dataclass(frozen=True)
class StartingPoint:
    tokenizer: object
    model: object  # the adapter it continues trainable, or the bare base (the trainer adds a fresh adapter)
    base_fingerprint: str  # taken before training, which changes a few of the model's settings
    window: int  # tokens a row may hold: the model's context window, at most TRAINER_FINE_TUNE_MAX_TOKENS


@dataclasses.dataclass(frozen=True)
class FineTuningStep:
    params: FineTuneParams  # resolved: no "auto" left
    training_path: pathlib.Path
    validation_path: pathlib.Path | None
    from_path: pathlib.Path | None  # the current version of the fine-tuned model it continues; None: the base
    owner: str
    kind = "fine_tune"
    chat = True
    evaluates_squad = False

    @property
    def name(self) -> str:
        return self.params.adapter

    def starting_point(self, context: TrainingContext) -> StartingPoint:
        model = load_with_adapter(context.base, self.from_path, trainable=True)
        return StartingPoint(load_tokenizer(context.base), model, fingerprint(model.config),
                             min(context.fine_tune_max_tokens, context_window(model.config)))

    def record(self, rows: list[dict], **extra) -> dict:
        """What params.json says of the job beyond its params."""
        return {"training_file": self.params.training_file, "training_rows": len(rows),
                "continued": str(self.from_path) if self.from_path else None, **extra}
