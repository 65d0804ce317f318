"""python -m textgen — the `textgen` command."""
import sys

from textgen.client.cli import main

sys.exit(main())
