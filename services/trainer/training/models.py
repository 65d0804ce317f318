"""Loading LLM_BASE_MODEL (a Hub id or a local folder) and a LoRA adapter on top of it, for training."""
import pathlib

from services.common.base_model import from_pretrained
from services.common.devices import Placement


def load_base_model(base_model: str):
    from transformers import AutoModelForCausalLM

    return from_pretrained(AutoModelForCausalLM, base_model)


def load_with_adapter(base_model: str, adapter: pathlib.Path | None, trainable: bool = False):
    """The base model, wrapped with the adapter at `adapter` when one is given."""
    model = load_base_model(base_model)
    if adapter is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)


def device_options(placement: Placement) -> dict:
    """The TrainingArguments (SFTConfig, GRPOConfig) options for where training runs: the CPU, or a GPU with mixed
    precision in the placement's dtype (the weights themselves stay float32)."""
    import torch

    return {"use_cpu": not placement.on_gpu, "bf16": placement.dtype == torch.bfloat16,
            "fp16": placement.dtype == torch.float16}


def lora_config(rank: int):
    from peft import LoraConfig

    # GPT-2's attention and MLP are Conv1D layers (weights stored transposed): fan_in_fan_out=True. No LoRA dropout:
    # GPT-2 already drops out attention and residuals, and a mask per adapted layer costs ~10% of a CPU step
    # (bench/bench_trainer.py).
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"],
                      fan_in_fan_out=True, task_type="CAUSAL_LM")
