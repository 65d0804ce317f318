"""The offline stand-in and the whole post-training run from the command line; the trainer's own command line
(services.trainer.commands) parses and runs them, so flags, ranges, --help and the environment work as there.

    python -m devtools.post_training pretrain [--steps 1000] [--seed 0]     (make tiny-model: the offline stand-in)
    python -m devtools.post_training post-train [--pretrain-steps N]        (make post-train: stand-in if missing,
                                                                             SFT, RL, evaluation and a report)
    python -m devtools.post_training rl-tuning-split --out DIR              (the train-side split RL is tuned on)
"""
import dataclasses
import pathlib
import typing

from services.common.devices import Placement
from services.common.limits import Bound
from services.trainer.config import TrainerConfig
from services.trainer.decisions import decided
from services.trainer import commands as cli
from services.trainer.training.params import with_ranges_in_help
from textgen.paths import STAND_IN_FOLDER


@with_ranges_in_help
@dataclasses.dataclass(frozen=True)
class PretrainParams:
    steps: typing.Annotated[int, Bound(1, 100_000)] = dataclasses.field(
        default=1000, metadata={"help": "optimizer steps of 8 x 256 tokens"})
    seed: typing.Annotated[int, Bound(0, 2**31)] = dataclasses.field(default=0, metadata={"help": "random seed"})


@with_ranges_in_help
@dataclasses.dataclass(frozen=True)
class PostTrainParams:
    pretrain_steps: typing.Annotated[int | None, Bound(1, 100_000)] = dataclasses.field(
        default=None, metadata={"help": "steps when the stand-in has to be pretrained first (default: pretrain's)"})


@with_ranges_in_help
@dataclasses.dataclass(frozen=True)
class RlTuningSplitParams:
    out: str = dataclasses.field(metadata={"help": "folder to write train.jsonl and validation.jsonl into"})
    sft_examples: typing.Annotated[int, Bound(1, 100_000)] = dataclasses.field(
        default=1200, metadata={"help": "max_examples of the SFT adapter RL will start from"})
    seen_prompts: bool = dataclasses.field(
        default=False, metadata={"help": "prompt with the questions SFT trained on instead of the ones it did not"})


def _pretrain(params: PretrainParams, config: TrainerConfig, placement: Placement) -> None:
    from devtools.post_training.stand_in import PretrainSettings, pretrain

    out = pretrain(pathlib.Path(config.models_dir) / STAND_IN_FOLDER,
                   PretrainSettings(steps=params.steps, seed=params.seed), torch_threads=config.torch_threads)
    print(f"wrote {out} (LLM_BASE_MODEL={out})")


def _post_train(params: PostTrainParams, config: TrainerConfig, placement: Placement) -> None:
    from devtools.post_training.post_train import post_train

    post_train(decided(config), placement, params.pretrain_steps)


def _rl_tuning_split(params: RlTuningSplitParams, config: TrainerConfig, placement: Placement) -> None:
    from devtools.post_training.rl_tuning import write_split

    sizes = write_split(decided(config).squad_dataset, params.sft_examples, pathlib.Path(params.out),
                        params.seen_prompts)
    print(f"wrote {params.out}: {sizes['train']} prompts (train.jsonl), {sizes['validation']} scored questions "
          f"(validation.jsonl)")


COMMANDS: cli.Commands = {
    "pretrain": (PretrainParams, _pretrain,
                 f"pretrain the offline stand-in base model into MODELS_DIR/{STAND_IN_FOLDER}"),
    "post-train": (PostTrainParams, _post_train, "the stand-in if missing, SFT, RL, evaluation and a report"),
    "rl-tuning-split": (RlTuningSplitParams, _rl_tuning_split,
                        "the train-side split RL's settings are chosen on (devtools/post_training/rl_tuning.py)"),
}


def main(argv: list[str] | None = None) -> None:
    cli.main(argv, COMMANDS, prog="python -m devtools.post_training", description=__doc__)
