"""Loading the base model (LLM_BASE_MODEL, resolved by services.common.base_model) onto the service's device,
failing with a message that says how to fix it instead of a stack trace, and setting it up for serving: single-token
attention with query heads folded onto shared key/value heads (services/llm/model/attention.py), and on the CPU linear
weights packed once (services/llm/model/packed_linear.py, unless LLM_PACK_WEIGHTS=0), with int8 copies for the smallest
steps when LLM_QUANTIZATION=int8."""
import dataclasses
import logging

from services.common.base_model import (BaseModelSpec, BaseModelUnavailable, context_window, fingerprint, load_model,
                                        load_tokenizer)
from services.common.devices import Placement
from services.llm.model import attention, packed_linear

log = logging.getLogger("textgen.llm")


QUANTIZATIONS = ("none", "int8")


@dataclasses.dataclass(frozen=True)
class ServingSetup:
    pack_weights: bool = True  # LLM_PACK_WEIGHTS
    quantization: str = "none"  # LLM_QUANTIZATION

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"LLM_QUANTIZATION={self.quantization!r}: use one of {', '.join(QUANTIZATIONS)}")


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


def load_base_model(spec: BaseModelSpec, placement: Placement, setup: ServingSetup = ServingSetup()) -> BaseModel:
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, dtype=placement.dtype).to(placement.device)
    model.eval()
    window = context_window(model.config)
    serving = prepare_for_serving(model, placement, setup)
    log.info("base model loaded", extra={"base_model": spec.name, "window": window, "placement": placement.describe(),
                                         "parameters": sum(p.numel() for p in model.parameters()), "serving": serving})
    return BaseModel(model=model, tokenizer=tokenizer, window=window, placement=placement, spec=spec,
                     fingerprint=fingerprint(model.config))


def prepare_for_serving(model, placement: Placement, setup: ServingSetup = ServingSetup()) -> list[str]:
    """Sets `model` up for serving, in place; says what it changed."""
    changes = []
    if attention.use(model):
        changes.append(f"attention {attention.NAME}")
    int8 = setup.quantization == "int8"
    if (setup.pack_weights or int8) and packed_linear.available(placement.device):
        changes.append(f"{packed_linear.pack(model, int8)} linear layers packed{' with int8 copies' if int8 else ''}")
    elif int8:
        raise BaseModelUnavailable(f"LLM_QUANTIZATION=int8 runs on the CPU only (this service runs on "
                                   f"{placement.device}); unset it")
    return changes
