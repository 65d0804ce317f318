"""Loading the base model (LLM_BASE_MODEL, resolved by services.common.base_model) onto the service's device,
failing with a message that says how to fix it instead of a stack trace."""
import dataclasses
import logging

from services.common.base_model import BaseModelSpec, context_window, fingerprint, load_model, load_tokenizer
from services.common.devices import Placement

log = logging.getLogger("textgen.llm")


@dataclasses.dataclass
class BaseModel:
    model: object
    tokenizer: object
    window: int  # positions the model can attend to (prompt + generated tokens)
    placement: Placement
    spec: BaseModelSpec
    fingerprint: str  # of its config: adapters trained on a base with another fingerprint are refused

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id


def load_base_model(spec: BaseModelSpec, placement: Placement) -> BaseModel:
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, dtype=placement.dtype).to(placement.device)
    model.eval()
    window = context_window(model.config)
    log.info("base model loaded", extra={"base_model": spec.name, "window": window, "placement": placement.describe(),
                                         "parameters": sum(p.numel() for p in model.parameters())})
    return BaseModel(model=model, tokenizer=tokenizer, window=window, placement=placement, spec=spec,
                     fingerprint=fingerprint(model.config))
