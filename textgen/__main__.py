"""python -m textgen — the `textgen` command."""
import sys

from textgen.cli import main

sys.exit(main())
