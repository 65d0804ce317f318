"""Loading LLM_BASE_MODEL (a Hub id or a local folder) and a LoRA adapter on top of it."""
import pathlib


class BaseModelError(RuntimeError):
    """LLM_BASE_MODEL could not be loaded."""


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except Exception as error:
        raise BaseModelError(f"LLM_BASE_MODEL={base_model!r}: cannot load its tokenizer ({error}); "
                             "`python -m services.llm.tiny_model` builds an offline stand-in") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(base_model: str):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(base_model)
    except Exception as error:
        raise BaseModelError(f"LLM_BASE_MODEL={base_model!r}: cannot load the model ({error}); "
                             "`python -m services.llm.tiny_model` builds an offline stand-in") from error


def load_with_adapter(base_model: str, adapter: pathlib.Path | None, trainable: bool = False):
    """The base model, wrapped with the adapter at `adapter` when one is given."""
    model = load_base_model(base_model)
    if adapter is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)


def lora_config(rank: int):
    from peft import LoraConfig

    # GPT-2's attention and MLP are Conv1D layers (weights stored transposed): fan_in_fan_out=True. No LoRA dropout:
    # GPT-2 already drops out attention and residuals, and a mask per adapted layer costs ~10% of a CPU step
    # (bench/bench_trainer.py).
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"],
                      fan_in_fan_out=True, task_type="CAUSAL_LM")
