"""What the training CLIs share: flags from a params dataclass with its ranges, config from the environment."""
import argparse
import dataclasses
import json
import logging
import pathlib

from services.common.logs import setup_logging
from services.trainer.config import TrainerConfig
from services.trainer.params import out_of_range


def parser_for(params_type, ranges: dict, description: str, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     epilog="Environment variables:\n" + TrainerConfig.describe(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(params_type):
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            low, high, low_open = ranges[field.name]
            kind = float if field.type in (float, "float") else int
            allowed = f"> {low} and <= {high}" if low_open else f"{low}..{high}"
            parser.add_argument(flag, type=kind, default=field.default, help=f"{allowed} (default {field.default})")
    return parser


def parse_params(parser: argparse.ArgumentParser, params_type, ranges: dict):
    values = vars(parser.parse_args())
    problems = out_of_range(values, ranges)
    if problems:
        parser.error("; ".join(description for _, description in problems))
    return params_type(**values)


def setup(config: TrainerConfig) -> None:
    setup_logging(config.log_level)
    logging.getLogger("textgen").setLevel(logging.INFO)
    apply_torch_threads(config)


def apply_torch_threads(config: TrainerConfig) -> None:
    """On cores shared with other busy processes a second torch thread spin-waits and slows small models down
    many times over; TRAINER_TORCH_THREADS=1 avoids that (see services/llm's measurements)."""
    if config.torch_threads > 0:
        import torch

        torch.set_num_threads(config.torch_threads)


def print_result(config: TrainerConfig, name: str, version: str) -> None:
    folder = pathlib.Path(config.models_dir) / "adapters" / name / version
    print(f"published {name} adapter version {version} at {folder}")
    evaluation = json.loads((folder / "eval.json").read_text())
    print("evaluation: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in evaluation.items() if k != "samples"))
