"""What a training run needs to know, and nothing more: the trainer's settings narrowed to the decided base model,
the data, where training runs and where it publishes. Built once per job or command from the trainer's configuration
(services/trainer/decisions.py), after the base model and data set are decided and torch is prepared (the
placement), so that nothing in training decides or resolves them again."""
import dataclasses
import pathlib

from services.common.base_model import BaseModelSpec
from services.common.devices import Placement


@dataclasses.dataclass(frozen=True)
class TrainingContext:
    base: BaseModelSpec
    models_dir: pathlib.Path
    squad_dataset: str
    placement: Placement
    eval_examples: int  # validation questions evaluated before publishing
    eval_max_new_tokens: int
    llm_addr: str  # told to reload its adapters after publishing
    keep_versions: int = 10  # TRAINER_KEEP_VERSIONS: publishing prunes each adapter to its newest versions
    fine_tune_max_tokens: int = 1024  # TRAINER_FINE_TUNE_MAX_TOKENS: a chat example is cut to this (and the window)
