"""Loading the base model (LLM_BASE_MODEL, resolved by services.common.base_model) and a LoRA adapter on top of it,
for training."""
import pathlib

from services.common.base_model import BaseModelSpec, load_model
from services.common.devices import Placement


def load_with_adapter(spec: BaseModelSpec, adapter: pathlib.Path | None, trainable: bool = False):
    """The base model, wrapped with the adapter at `adapter` when one is given."""
    model = load_model(spec)
    if adapter is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)


def load_merged(spec: BaseModelSpec, adapter: pathlib.Path | None):
    """For inference only: the base model with the adapter's weights added into its own (peft's merge_and_unload).
    The same weights as load_with_adapter's, generating in 0.73 of the time on 2 cores, since no layer computes its
    LoRA product apart (bench/bench_merged_eval.py). In bfloat16 autocast the two round differently, so a few greedy
    answers differ (F1 61.7 merged, 61.4 wrapped on the 501 validation questions, docs/post-training.md)."""
    model = load_with_adapter(spec, adapter)
    return model if adapter is None else model.merge_and_unload()


def device_options(placement: Placement) -> dict:
    """The TrainingArguments (SFTConfig, GRPOConfig) options for where training runs: the CPU, or a GPU with mixed
    precision in the placement's dtype (the weights themselves stay float32)."""
    import torch

    return {"use_cpu": not placement.on_gpu, "bf16": placement.dtype == torch.bfloat16,
            "fp16": placement.dtype == torch.float16}


def lora_config(rank: int, model):
    """LoRA on every linear layer of `model` but its output head, whatever the architecture calls them (GPT-2:
    c_attn, c_proj, c_fc; Llama: q/k/v/o_proj, gate/up/down_proj)."""
    from peft import LoraConfig
    from transformers.pytorch_utils import Conv1D

    # GPT-2's layers are Conv1D, their weights stored transposed: fan_in_fan_out. No LoRA dropout: a mask per
    # adapted layer costs ~10% of a CPU step (bench/bench_trainer.py), and the model drops out what it was built to.
    transposed = any(isinstance(module, Conv1D) for module in model.modules())
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
                      fan_in_fan_out=transposed, task_type="CAUSAL_LM")
