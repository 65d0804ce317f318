"""The training runs from the command line, with progress bars; what they publish is what a job would publish.

    python -m services.trainer.commands sft [--max-examples 200] [--num-train-epochs 1] ...   (make train-sft)
    python -m services.trainer.commands rl  [--steps 60] [--use-dataset-prompts] ...           (make train-rl)
    python -m services.trainer.commands eval [--examples 50]                                   (make eval)

Each subcommand's flags are its params dataclass (training/params.py), parsed by transformers' HfArgumentParser as
`trl sft` parses its own; `--help` shows their defaults and allowed ranges. The environment (LLM_BASE_MODEL,
SQUAD_DATASET, MODELS_DIR, ...) is read as the trainer service reads it, and decided once per command where unset.
The offline stand-in and the one-command post-training run are development tools, with a command line built from
this one: python -m devtools.post_training pretrain|post-train.
"""
import argparse
import json
import pathlib
import sys
from collections.abc import Callable

from services.common import adapters
from services.common.devices import Placement
from services.common.limits import out_of_range
from services.common.logs import setup_logging
from services.trainer.config import TrainerConfig
from services.trainer.decisions import decided, training_context
from services.trainer.training.params import EvalParams, RlParams, SftParams, refused

PROG = "python -m services.trainer.commands"


def _sft(params: SftParams, config: TrainerConfig, placement: Placement) -> None:
    from services.trainer.training import pipeline
    from services.trainer.training.sft import SftStep

    context = training_context(decided(config), placement)
    _print_published(context.models_dir, params.adapter, pipeline.train(SftStep(params), context,
                                                                         show_progress=True))


def _rl(params: RlParams, config: TrainerConfig, placement: Placement) -> None:
    from services.trainer.training import pipeline
    from services.trainer.training.rl import NoSftAdapter, RlStep

    context = training_context(decided(config), placement)
    try:
        version = pipeline.train(RlStep(params), context, show_progress=True)
    except NoSftAdapter as error:
        sys.exit(f"{error} (python -m services.trainer.commands sft)")
    _print_published(context.models_dir, params.adapter, version)


def _eval(params: EvalParams, config: TrainerConfig, placement: Placement) -> None:
    from services.trainer.training.evaluation import compare_published

    context = training_context(decided(config), placement)
    report = compare_published(context, params.examples or context.eval_examples,
                               params.max_new_tokens or context.eval_max_new_tokens)
    print(report.table)
    print(f"wrote {report.path}, eval.json, eval.png")


# name -> (its params dataclass, what runs it, a one-line summary). A command runs with the configuration as read
# and the placement; one that trains decides the base model and data set itself (decided(config)), once.
Commands = dict[str, tuple[type, Callable, str]]
COMMANDS: Commands = {
    "sft": (SftParams, _sft, "supervised fine-tuning: a LoRA adapter that answers in the fixed format"),
    "rl": (RlParams, _rl, "GRPO from the current SFT adapter, rewarding the format and the answer"),
    "eval": (EvalParams, _eval, "base, sft and rl side by side on the validation split"),
}


def _print_published(models_dir: pathlib.Path, name: str, version: str) -> None:
    folder = adapters.version_dir(models_dir, name, version)
    print(f"published {name} adapter version {version} at {folder}")
    evaluation = json.loads((folder / adapters.EVALUATION).read_text())
    print("evaluation: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in evaluation.items() if k != "samples"))


def parser(commands: Commands = COMMANDS, prog: str = PROG, description: str = __doc__) -> argparse.ArgumentParser:
    from transformers import HfArgumentParser

    root = argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Environment variables:\n" + TrainerConfig.describe())
    subcommands = root.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)
    for name, (params_type, _, summary) in commands.items():
        subcommands.add_parser(name, dataclass_types=[params_type], help=summary, description=summary)
    return root


def main(argv: list[str] | None = None, commands: Commands = COMMANDS, prog: str = PROG,
         description: str = __doc__) -> None:
    """Parses and runs one of `commands` (this module's own, or another command line's built the same way)."""
    root = parser(commands, prog, description)
    arguments = vars(root.parse_args(argv))
    params_type, run, _ = commands[arguments.pop("command")]
    params = params_type(**arguments)
    problems = out_of_range(params) + refused(params)
    if problems:
        root.error("; ".join(explained for _, explained in problems))
    config = TrainerConfig.from_env()
    setup_logging(config.log_level)
    placement = config.prepare_torch()  # where every stage of this command trains and evaluates
    run(params, config, placement)


if __name__ == "__main__":
    main()
