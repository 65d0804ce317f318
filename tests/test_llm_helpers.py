"""Shared by the llm tests: the tiny model in a temporary MODELS_DIR, and transformers' own greedy decoding to hold
the service's against."""
import pathlib

from services.llm.tiny_model import build_tiny_model


def tiny_models_dir(tmp: pathlib.Path) -> pathlib.Path:
    build_tiny_model(tmp / "tiny-gpt2")
    return tmp


def greedy_continuation(model, tokenizer, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """transformers' `generate`, greedy, on one prompt: the new tokens up to the end-of-text token."""
    import torch

    with torch.inference_mode():
        output = model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids),
                                dtype=torch.long), max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.eos_token_id)
    new = output[0, len(prompt_ids):].tolist()
    return new[:new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new
