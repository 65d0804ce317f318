"""What a training run needs to know, and nothing more: the trainer's settings narrowed to the decided base model,
the data, where training runs and where it publishes. Built once per job or command from the TrainerConfig, after
the base model and data set are decided and torch is prepared (the placement), so that nothing in training decides
or resolves them again."""
import dataclasses
import pathlib

from services.common.base_model import BaseModelSpec
from services.common.devices import Placement
from services.trainer.config import TrainerConfig


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

    @classmethod
    def from_config(cls, config: TrainerConfig, placement: Placement) -> "TrainingContext":
        """`config` decided (TrainerConfig.decided, or a worker's environment the trainer decided), `placement` from
        TrainerConfig.prepare_torch in this process."""
        return cls(base=config.base(), models_dir=config.models_dir, squad_dataset=config.squad_dataset,
                   placement=placement, eval_examples=config.eval_examples,
                   eval_max_new_tokens=config.eval_max_new_tokens, llm_addr=config.llm_addr,
                   keep_versions=config.keep_versions)
