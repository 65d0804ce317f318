"""LLM_BASE_MODEL, a Hub id or a local folder, loaded the same way by the llm service and the trainer: a name that
cannot be loaded fails at once with a message naming it and the fix, never with a stack trace."""
import os
import pathlib

TINY_MODEL_HINT = ("set LLM_BASE_MODEL to a local model folder, e.g. LLM_BASE_MODEL=models/tiny-gpt2 after "
                   "`make tiny-model`, or give the service network access to the Hugging Face Hub")


class BaseModelUnavailable(RuntimeError):
    """LLM_BASE_MODEL could not be loaded; the message names it and the fix."""


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def resolve(name: str) -> str | pathlib.Path:
    """The local folder `name` points at, or `name` itself as a Hub id."""
    # "owner/name" is also a Hub id's shape: it is taken for a path when its first part is a local folder.
    looks_like_path = (name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1]
                       or pathlib.Path(name.split("/")[0]).is_dir())
    if not looks_like_path:
        return name
    path = pathlib.Path(name).expanduser()
    if not path.is_dir():
        # Otherwise transformers would take it for a Hub id and retry the network for most of a minute.
        raise BaseModelUnavailable(f"base model {name!r} is not a folder here; {TINY_MODEL_HINT}")
    return path


def load_tokenizer(name: str):
    """LLM_BASE_MODEL's tokenizer, padding with EOS when it has no pad token of its own (GPT-2 has none)."""
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, name)
    if tokenizer.eos_token_id is None:
        raise BaseModelUnavailable(f"base model {name!r} has no EOS token; a GPT-2-style tokenizer is needed")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_window(model) -> int:
    """How many positions `model` attends to: prompt and generated tokens together."""
    config = model.config
    return int(getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", 1024))


def from_pretrained(loader, name: str, **kwargs):
    """`loader.from_pretrained` (AutoTokenizer, AutoModelForCausalLM, ...) on LLM_BASE_MODEL."""
    source = resolve(name)
    try:
        return loader.from_pretrained(source, **kwargs)
    except Exception as error:  # OSError, ValueError, HTTP errors...: all mean "this model is not loadable here"
        raise BaseModelUnavailable(f"base model {name!r} could not be loaded ({_first_line(error)}); "
                                   f"{TINY_MODEL_HINT}") from error
