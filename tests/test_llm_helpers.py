"""Shared by the llm tests: the tiny model in a temporary MODELS_DIR."""
import pathlib

from services.llm.tiny_model import build_tiny_model


def tiny_models_dir(tmp: pathlib.Path) -> pathlib.Path:
    build_tiny_model(tmp / "tiny-gpt2")
    return tmp
