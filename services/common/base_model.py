"""Which causal language model is the base, and loading it: one resolution for the llm service, the trainer and the
training command line.

LLM_BASE_MODEL is one of
  - unset: openai-community/gpt2 when the local Hugging Face cache or the Hub has it (decided within 5 s),
    otherwise the embedded SmolLM2-135M-Instruct (services/common/embedded_model.py), with a note saying why;
  - "embedded": the embedded model, made under MODELS_DIR on first use;
  - a local model folder, or a .gguf file (dequantized as it loads);
  - a Hub id.
A model that cannot be loaded fails with one line naming it and the fix, never with a stack trace.
"""
import dataclasses
import hashlib
import json
import os
import pathlib

from services.common import embedded_model, hub
from services.common.errors import first_line

VARIABLE = "LLM_BASE_MODEL"
DEFAULT_HUB_MODEL = "openai-community/gpt2"
EMBEDDED = "embedded"
SETTING_HELP = (f"unset: {DEFAULT_HUB_MODEL} when cached or reachable, else the embedded SmolLM2-135M-Instruct; "
                f"or '{EMBEDDED}', a local model folder, a .gguf file or a Hub id")
HINT = (f"unset {VARIABLE} (or set {VARIABLE}={EMBEDDED}) to serve the embedded {embedded_model.NAME}, or set it "
        "to a local model folder, a .gguf file or a Hub id this machine can reach")
# Config fields that say nothing about the weights' shapes or meaning: how a process loaded or uses the model (trl's
# trainers set pad_token_id and use_cache on the model they train).
_LOADING_FIELDS = {"dtype", "torch_dtype", "transformers_version", "use_cache", "quantization_config", "architectures",
                   "pad_token_id"}
# Where configs keep their context length, by architecture.
_WINDOW_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length",
                  "max_seq_len")


class BaseModelUnavailable(RuntimeError):
    """The base model could not be loaded; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class BaseModelSpec:
    setting: str  # an LLM_BASE_MODEL value naming this model with no further decision (what child processes get)
    name: str  # what status pages, job records and adapters show
    source: str | pathlib.Path  # what from_pretrained reads: a Hub id or a folder
    gguf_file: str | None = None
    embedded: bool = False
    note: str = ""  # why this model, when LLM_BASE_MODEL did not name it


def _named(setting: str, models_dir: pathlib.Path, note: str = "") -> BaseModelSpec:
    if setting == EMBEDDED:
        return BaseModelSpec(EMBEDDED, f"{embedded_model.NAME} (embedded)", embedded_model.folder(models_dir),
                             embedded=True, note=note)
    # "owner/name" is also a Hub id's shape: it is taken for a path when its first part is a local folder.
    looks_like_path = (setting.startswith((".", "/", "~")) or setting.endswith(".gguf")
                       or os.sep in setting.strip("/").split("/", 1)[-1] or pathlib.Path(setting.split("/")[0]).is_dir())
    if not looks_like_path:
        return BaseModelSpec(setting, setting, setting, note=note)
    path = pathlib.Path(setting).expanduser()
    if path.suffix == ".gguf":
        return BaseModelSpec(setting, setting, path.parent, gguf_file=path.name, note=note)
    return BaseModelSpec(setting, setting, path, note=note)


def choose(setting: str, models_dir: pathlib.Path, hub_check=hub.availability) -> BaseModelSpec:
    """The base model LLM_BASE_MODEL=`setting` names, or the default when it is unset (""). Whether it can be loaded
    shows when it is loaded."""
    setting = setting.strip()
    if setting:
        return _named(setting, pathlib.Path(models_dir))
    why_not = hub_check(DEFAULT_HUB_MODEL)
    if why_not is None:
        return _named(DEFAULT_HUB_MODEL, pathlib.Path(models_dir),
                      f"{VARIABLE} is unset and {DEFAULT_HUB_MODEL}, the default, can be loaded here")
    return _named(EMBEDDED, pathlib.Path(models_dir),
                  f"{VARIABLE} is unset and {DEFAULT_HUB_MODEL} cannot be loaded here ({why_not}): the embedded "
                  f"{embedded_model.NAME} instead")


def _from_pretrained(loader, spec: BaseModelSpec, show_progress: bool = False, **kwargs):
    """`loader.from_pretrained` (AutoTokenizer, AutoModelForCausalLM, ...) on the base model."""
    if spec.embedded:
        try:
            embedded_model.ensure(pathlib.Path(spec.source).parent, show_progress)
        except embedded_model.EmbeddedModelUnavailable as error:
            raise BaseModelUnavailable(f"the embedded {embedded_model.NAME} is not available: {error}") from None
    local = isinstance(spec.source, pathlib.Path)
    if local and not (spec.source / spec.gguf_file if spec.gguf_file else spec.source).exists():
        # Otherwise transformers would take it for a Hub id and retry the network for most of a minute.
        raise BaseModelUnavailable(f"base model {spec.setting!r} is neither a folder nor a .gguf file here; {HINT}")
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    try:
        return loader.from_pretrained(spec.source, **kwargs)
    except Exception as error:  # OSError, ValueError, HTTP errors, a broken GGUF...: "not loadable here"
        raise BaseModelUnavailable(f"base model {spec.setting!r} could not be loaded ({first_line(error)}); "
                                   f"{HINT}") from error


def load_tokenizer(spec: BaseModelSpec, show_progress: bool = False):
    """The base model's tokenizer, padding with EOS when it has no pad token of its own (GPT-2 has none)."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, spec, show_progress)
    if tokenizer.eos_token_id is None:
        raise BaseModelUnavailable(f"base model {spec.setting!r} has no end-of-text token; a causal LM's tokenizer "
                                   "needs one to end answers")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(spec: BaseModelSpec, show_progress: bool = False, **kwargs):
    """The base model as a causal LM (AutoModelForCausalLM), in float32 unless `dtype` says otherwise."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = _from_pretrained(AutoConfig, spec, show_progress)
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise BaseModelUnavailable(f"base model {spec.setting!r} is a {config.model_type!r} model, not a causal "
                                   f"language model (AutoModelForCausalLM cannot load it); {HINT}")
    return _from_pretrained(AutoModelForCausalLM, spec, **kwargs)


def context_window(config) -> int:
    """How many positions a model attends to (prompt and generated tokens together), whatever its config calls it."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for field in _WINDOW_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    raise BaseModelUnavailable(f"the base model's config ({config.model_type}) states no context length "
                               f"(none of {', '.join(_WINDOW_FIELDS)})")


def fingerprint(config) -> str:
    """A hash of what the model's config says about its weights: two bases with the same fingerprint take the same
    adapters. The dtype a process loaded it in, and the like, are left out."""
    described = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k not in _LOADING_FIELDS}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]
