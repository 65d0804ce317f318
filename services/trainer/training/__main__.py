"""python -m services.trainer.training sft|rl|eval — see services/trainer/training/cli.py."""
from services.trainer.training.cli import main

main()
