"""Loading the base model (LLM_BASE_MODEL, resolved by services.common.base_model) onto the service's device,
failing with a message that says how to fix it instead of a stack trace, and setting it up for serving: single-token
attention with query heads folded onto shared key/value heads (services/llm/attention.py), and on the CPU linear
weights packed once (services/llm/packed_linear.py, unless LLM_PACK_WEIGHTS=0)."""
import dataclasses
import logging

from services.common.base_model import BaseModelSpec, context_window, fingerprint, load_model, load_tokenizer
from services.common.devices import Placement
from services.llm import attention, packed_linear

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


def load_base_model(spec: BaseModelSpec, placement: Placement, pack_weights: bool = True) -> BaseModel:
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, dtype=placement.dtype).to(placement.device)
    model.eval()
    window = context_window(model.config)
    log.info("base model loaded", extra={"base_model": spec.name, "window": window, "placement": placement.describe(),
                                         "parameters": sum(p.numel() for p in model.parameters()),
                                         "serving": prepare_for_serving(model, placement, pack_weights)})
    return BaseModel(model=model, tokenizer=tokenizer, window=window, placement=placement, spec=spec,
                     fingerprint=fingerprint(model.config))


def prepare_for_serving(model, placement: Placement, pack_weights: bool = True) -> list[str]:
    """Sets `model` up for serving, in place; says what it changed."""
    changes = []
    if attention.use(model):
        changes.append(f"attention {attention.NAME}")
    if pack_weights and packed_linear.available(placement.device):
        changes.append(f"{packed_linear.pack(model)} linear layers packed")
    return changes
