"""python -m services.trainer.rl_train [--steps 60 ...] — GRPO from the current SFT adapter, with a progress bar,
publishing the adapter exactly as a POST /llm/train_rl job does."""
import sys

from services.trainer.cli import parse_params, parser_for, print_result, setup
from services.trainer.config import TrainerConfig
from services.trainer.params import RL_RANGES, RlParams


def main() -> None:
    params = parse_params(parser_for(RlParams, RL_RANGES, __doc__, "python -m services.trainer.rl_train"), RlParams, RL_RANGES)
    config = TrainerConfig.from_env()
    setup(config)
    from services.trainer.rl import NoSftAdapter, train_rl

    try:
        version = train_rl(params, config, show_progress=True)
    except NoSftAdapter as error:
        sys.exit(f"{error} (python -m services.trainer.sft_train)")
    print_result(config, "rl", version)


if __name__ == "__main__":
    main()
