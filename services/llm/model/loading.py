"""Loading the base model (LLM_BASE_MODEL, resolved by services.common.base_model) onto the service's device,
failing with a message that says how to fix it instead of a stack trace, and setting up the forward that serves it
(services/llm/model/forward.py): our own for the Llama and GPT-2 families, transformers' for any other; on the CPU with
weights packed once (services/llm/model/projection.py, unless LLM_PACK_WEIGHTS=0), and int8 copies for the smallest
steps when LLM_QUANTIZATION=int8."""
import dataclasses
import logging

from services.common.base_model import (BaseModelSpec, BaseModelUnavailable, context_window, fingerprint, load_model,
                                        load_tokenizer)
from services.common.devices import Placement
from services.llm.model import projection
from services.llm.model.forward import Forward, serving_forward

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
    model: object  # as transformers loads it: the reference, and the fallback's forward
    forward: Forward
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
    forward = serving(model, placement, setup)
    log.info("base model loaded", extra={"base_model": spec.name, "window": window, "placement": placement.describe(),
                                         "parameters": sum(p.numel() for p in model.parameters()),
                                         "forward": forward.kind})
    return BaseModel(model=model, forward=forward, tokenizer=tokenizer, window=window, placement=placement, spec=spec,
                     fingerprint=fingerprint(model.config))


def serving(model, placement: Placement, setup: ServingSetup = ServingSetup(), native: bool = True) -> Forward:
    """The forward that serves `model` as `setup` says (`native`: our own where the family has one)."""
    int8 = setup.quantization == "int8"
    if int8 and not projection.available(placement.device):
        raise BaseModelUnavailable(f"LLM_QUANTIZATION=int8 runs on the CPU only (this service runs on "
                                   f"{placement.device}); unset it")
    return serving_forward(model, setup.pack_weights or int8, int8, native)


def prepare_for_serving(model, placement: Placement, setup: ServingSetup = ServingSetup()) -> list[str]:
    """Sets `model` up to be served by transformers' own forward (the fallback's set-up), in place; says what it
    changed."""
    return serving(model, placement, setup, native=False).changes
