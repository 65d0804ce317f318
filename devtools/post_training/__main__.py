"""python -m devtools.post_training pretrain|post-train — see devtools/post_training/cli.py."""
from devtools.post_training.cli import main

main()
