"""Shared by the llm tests: the tiny model in a temporary MODELS_DIR and LoRA adapters published onto it."""
import pathlib

import torch

from services.common import adapters
from services.common.prompts import qa_completion, qa_prompt
from services.llm.tiny_model import build_tiny_model
from services.trainer.training.models import lora_config

FACTS = [("What is the capital of France?", "Paris is the capital of France.", "Paris"),
         ("Who came into the harbour?", "The ship came into the harbour.", "The ship"),
         ("What was calm?", "The sea was calm and the sky was clear.", "The sea"),
         ("Who looked at the sea?", "Edmond looked at the sea.", "Edmond")]


def tiny_models_dir(tmp: pathlib.Path) -> pathlib.Path:
    build_tiny_model(tmp / "tiny-gpt2")
    return tmp


def train_adapter(models_dir: pathlib.Path, name: str, steps: int = 30, seed: int = 0) -> str:
    """A LoRA adapter trained for a few steps on the format (prompt + completion, loss on the completion),
    saved as safetensors and published as the current version of `name`. Returns the version."""
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains many times faster on one thread than on two
    try:
        return _train_and_publish(models_dir, name, steps)
    finally:
        torch.set_num_threads(threads)


def _train_and_publish(models_dir: pathlib.Path, name: str, steps: int) -> str:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = models_dir / "tiny-gpt2"
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora_config(8))
    examples = []
    for question, context, answer in FACTS:
        prompt = tokenizer(qa_prompt(question, context))["input_ids"]
        completion = tokenizer(qa_completion(answer))["input_ids"] + [tokenizer.eos_token_id]
        examples.append((torch.tensor([prompt + completion]), torch.tensor([[-100] * len(prompt) + completion])))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for step in range(steps):
        input_ids, labels = examples[step % len(examples)]
        model(input_ids=input_ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    staged = adapters.staging_dir(models_dir, name)
    model.save_pretrained(staged)
    return adapters.publish(models_dir, name, staged)
