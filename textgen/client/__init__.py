"""The client side: a Python client over the generated stubs (textgen.client.api) and the `textgen` command
(textgen.client.cli).

    from textgen.client import Client, TextgenError
"""
from textgen.client.api import Client, TextgenError

__all__ = ["Client", "TextgenError"]
