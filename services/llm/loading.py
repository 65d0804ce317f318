"""Loading LLM_BASE_MODEL (a Hub id or a local folder) with transformers, failing with a message that says how
to fix it instead of a stack trace."""
import dataclasses
import logging
import os
import pathlib

from services.llm.config import TINY_MODEL_HINT

log = logging.getLogger("textgen.llm")


class BaseModelUnavailable(RuntimeError):
    """LLM_BASE_MODEL could not be loaded; the message names it and the fix."""


@dataclasses.dataclass
class BaseModel:
    model: object
    tokenizer: object
    window: int  # positions the model can attend to (prompt + generated tokens)

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def load_base_model(name: str) -> BaseModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # "owner/name" is also a Hub id's shape: it is taken for a path when its first part is a local folder.
    looks_like_path = (name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1]
                       or pathlib.Path(name.split("/")[0]).is_dir())
    if looks_like_path and not pathlib.Path(name).expanduser().is_dir():
        # Otherwise transformers would take it for a Hub id and retry the network for most of a minute.
        raise BaseModelUnavailable(f"base model {name!r} is not a folder here; {TINY_MODEL_HINT}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(pathlib.Path(name).expanduser() if looks_like_path else name)
        model = AutoModelForCausalLM.from_pretrained(pathlib.Path(name).expanduser() if looks_like_path else name,
                                                     dtype=torch.float32)
    except Exception as error:  # OSError, ValueError, HTTP errors...: all mean "this model is not loadable here"
        raise BaseModelUnavailable(f"base model {name!r} could not be loaded ({_first_line(error)}); "
                                   f"{TINY_MODEL_HINT}") from error
    if tokenizer.eos_token_id is None:
        raise BaseModelUnavailable(f"base model {name!r} has no EOS token; a GPT-2-style tokenizer is needed")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    window = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    window = window or tokenizer.model_max_length
    log.info("base model loaded", extra={"base_model": name, "window": window,
                                         "parameters": sum(p.numel() for p in model.parameters())})
    return BaseModel(model=model, tokenizer=tokenizer, window=int(window))
