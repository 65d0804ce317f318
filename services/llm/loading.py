"""Loading LLM_BASE_MODEL (a Hub id or a local folder) with transformers, failing with a message that says how
to fix it instead of a stack trace."""
import dataclasses
import logging

from services.common.base_model import BaseModelUnavailable, from_pretrained

log = logging.getLogger("textgen.llm")


@dataclasses.dataclass
class BaseModel:
    model: object
    tokenizer: object
    window: int  # positions the model can attend to (prompt + generated tokens)

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id


def load_base_model(name: str) -> BaseModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, name)
    model = from_pretrained(AutoModelForCausalLM, name, dtype=torch.float32)
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
