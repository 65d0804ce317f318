"""Loading LLM_BASE_MODEL (a Hub id or a local folder) with transformers, failing with a message that says how
to fix it instead of a stack trace."""
import dataclasses
import logging

from services.common.base_model import context_window, from_pretrained, load_tokenizer
from services.common.devices import Placement

log = logging.getLogger("textgen.llm")


@dataclasses.dataclass
class BaseModel:
    model: object
    tokenizer: object
    window: int  # positions the model can attend to (prompt + generated tokens)
    placement: Placement

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id


def load_base_model(name: str, placement: Placement) -> BaseModel:
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name)
    model = from_pretrained(AutoModelForCausalLM, name, dtype=placement.dtype).to(placement.device)
    model.eval()
    window = context_window(model)
    log.info("base model loaded", extra={"base_model": name, "window": window, "placement": placement.describe(),
                                         "parameters": sum(p.numel() for p in model.parameters())})
    return BaseModel(model=model, tokenizer=tokenizer, window=window, placement=placement)
