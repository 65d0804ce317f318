"""python -m services.trainer.sft_train [--max-examples 200 ...] — SFT from the command line, with a progress bar,
publishing the adapter exactly as a POST /llm/train_sft job does."""
from services.trainer.cli import parse_params, parser_for, print_result, setup
from services.trainer.config import TrainerConfig
from services.trainer.params import SFT_RANGES, SftParams


def main() -> None:
    params = parse_params(parser_for(SftParams, SFT_RANGES, __doc__, "python -m services.trainer.sft_train"), SftParams, SFT_RANGES)
    config = TrainerConfig.from_env()
    setup(config)
    from services.trainer.sft import train_sft

    print_result(config, "sft", train_sft(params, config, show_progress=True))


if __name__ == "__main__":
    main()
