"""GPT-2-architecture models with random weights, built in seconds, for the tests and the benchmarks: the same
classes, Conv1D layers and LoRA targets as openai-community/gpt2, a byte-level BPE tokenizer trained on the shipped
corpus, saved as ordinary Hugging Face folders. `build_gpt2_size_model` has GPT-2's real size and cost (124M).
(The stand-in that post-training works on is pretrained: services/trainer/training/stand_in.py, `make tiny-model`.)
"""
import pathlib

from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from services.common.atomic import replacing_directory
from services.common.corpus import FALLBACK_CORPUS
from services.common.prompts import PREFIX, SUFFIX

EOS = "<|endoftext|>"
GPT2_VOCAB = 50257


def build_tiny_model(out_dir: pathlib.Path, vocab_size: int = 2000, n_layer: int = 2, n_embd: int = 64,
                     n_head: int = 2, n_positions: int = 1024, seed: int = 0) -> pathlib.Path:
    """Writes the model and tokenizer to `out_dir` atomically (a folder beside it, renamed into place)."""
    import torch

    torch.manual_seed(seed)
    out_dir = pathlib.Path(out_dir)
    with replacing_directory(out_dir) as staging:
        corpus = FALLBACK_CORPUS.read_text(encoding="utf-8")
        bpe = ByteLevelBPETokenizer()
        # The answer format and the prompt words appear in every example: make them cheap to encode.
        bpe.train_from_iterator([corpus, f"{PREFIX} {SUFFIX}\nContext: Question: Answer:"] * 2,
                                vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS])
        bpe.save(str(staging / "tokenizer.json"))
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(staging / "tokenizer.json"),
                                            eos_token=EOS, bos_token=EOS, unk_token=EOS)
        tokenizer.model_max_length = n_positions
        tokenizer.save_pretrained(staging)
        config = GPT2Config(vocab_size=len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                            n_positions=n_positions, bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
        GPT2LMHeadModel(config).save_pretrained(staging)
    return out_dir


def build_gpt2_size_model(out_dir: pathlib.Path) -> pathlib.Path:
    """GPT2Config()'s defaults (124M parameters) with random weights; the tiny model's tokenizer padded with
    placeholder tokens to GPT-2's 50257 entries, so the output layer has GPT-2's real size and every id decodes."""
    import torch
    from transformers import AutoTokenizer

    out_dir = pathlib.Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(out_dir.with_name(out_dir.name + "-tokenizer")))
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(GPT2_VOCAB - len(tokenizer))])
    torch.manual_seed(0)
    with replacing_directory(out_dir) as staging:
        tokenizer.save_pretrained(staging)
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
        GPT2LMHeadModel(config).save_pretrained(staging)
    return out_dir
