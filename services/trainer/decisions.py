"""Where the trainer's configuration meets the training pipeline: the decisions a process takes once and hands on
(the base model and the SQuAD data set, where left unset) and the TrainingContext a run gets from them. The
configuration knows nothing of training, and training nothing of the configuration; only this module knows both."""
import dataclasses
import logging

from services.common.devices import Placement
from services.trainer.config import TrainerConfig
from services.trainer.training.context import TrainingContext


def decided(config: TrainerConfig) -> TrainerConfig:
    """`config` with the base model and the data set decided where they were left unset (a few seconds' check of the
    Hub), each decision logged with its reason. A process decides once and hands the decision on: a job's worker
    gets the trainer's, and every stage of one command gets the same."""
    from services.trainer.training.data import choose_dataset

    base, dataset = config.base(), choose_dataset(config.squad_dataset)
    for note in (base.note, dataset.note):
        if note:
            logging.getLogger("textgen.trainer").warning(note)
    return dataclasses.replace(config, base_model=base.setting, squad_dataset=dataset.spec)


def training_context(config: TrainerConfig, placement: Placement) -> TrainingContext:
    """The context of a run: `config` decided (`decided`, or a worker's environment the trainer decided),
    `placement` from TrainerConfig.prepare_torch in this process."""
    return TrainingContext(base=config.base(), models_dir=config.models_dir, squad_dataset=config.squad_dataset,
                           placement=placement, eval_examples=config.eval_examples,
                           eval_max_new_tokens=config.eval_max_new_tokens, llm_addr=config.llm_addr,
                           keep_versions=config.keep_versions, fine_tune_max_tokens=config.fine_tune_max_tokens)
