"""Models with random weights, built in seconds, for the tests, benchmarks and suites, saved as ordinary Hugging Face
folders with a byte-level BPE tokenizer trained on the shipped corpus. `build_tiny_model` has GPT-2's architecture
(the same classes, Conv1D layers and LoRA targets as openai-community/gpt2) and `build_gpt2_size_model` GPT-2's real
size and cost (124M); `build_tiny_llama` the embedded SmolLM2's architecture. `train_tiny_adapter` publishes a LoRA
adapter trained for a few steps on a handful of facts; `greedy_continuation` is transformers' own greedy decoding, to
hold the service's against.
(The stand-in that post-training works on is pretrained, not random: devtools/post_training/stand_in.py, in
MODELS_DIR/tiny-gpt2.)
"""
import pathlib

from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from services.common import adapters
from services.common.atomic import replacing_directory
from services.common.base_model import fingerprint
from services.common.prompts import PREFIX, SUFFIX, qa_completion, qa_prompt
from textgen.paths import SHIPPED_CORPUS

EOS = "<|endoftext|>"
GPT2_VOCAB = 50257
# Their folders, in a test's MODELS_DIR
RANDOM_GPT2 = "random-gpt2"  # build_tiny_model's defaults: 2 layers, 64 wide
RANDOM_DEEP_GPT2 = "random-deep-gpt2"  # GPT-2's 12 layers and width with the tiny vocabulary: slow per step
RANDOM_LLAMA = "random-llama"  # build_tiny_llama


def _tiny_tokenizer(folder: pathlib.Path, vocab_size: int, n_positions: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the shipped corpus, saved into `folder`; it has no pad token, as GPT-2's."""
    corpus = SHIPPED_CORPUS.read_text(encoding="utf-8")
    bpe = ByteLevelBPETokenizer()
    # The answer format and the prompt words appear in every example: make them cheap to encode.
    bpe.train_from_iterator([corpus, f"{PREFIX} {SUFFIX}\nContext: Question: Answer:"] * 2,
                            vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS])
    bpe.save(str(folder / "tokenizer.json"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"),
                                        eos_token=EOS, bos_token=EOS, unk_token=EOS)
    tokenizer.model_max_length = n_positions
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_tiny_model(out_dir: pathlib.Path, vocab_size: int = 2000, n_layer: int = 2, n_embd: int = 64,
                     n_head: int = 2, n_positions: int = 1024, seed: int = 0) -> pathlib.Path:
    """Writes the model and tokenizer to `out_dir` atomically (a folder beside it, renamed into place)."""
    import torch

    torch.manual_seed(seed)
    out_dir = pathlib.Path(out_dir)
    with replacing_directory(out_dir) as staging:
        tokenizer = _tiny_tokenizer(staging, vocab_size, n_positions)
        config = GPT2Config(vocab_size=len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                            n_positions=n_positions, bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
        GPT2LMHeadModel(config).save_pretrained(staging)
    return out_dir


def build_tiny_llama(out_dir: pathlib.Path, vocab_size: int = 2000, seed: int = 0) -> pathlib.Path:
    """The embedded model's architecture (LlamaForCausalLM: rotary positions, grouped-query attention, q/k/v/o and
    gate/up/down projections, tied embeddings) at a tiny size with random weights, and the tiny tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    out_dir = pathlib.Path(out_dir)
    with replacing_directory(out_dir) as staging:
        tokenizer = _tiny_tokenizer(staging, vocab_size, 2048)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                             tie_word_embeddings=True, bos_token_id=tokenizer.eos_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        LlamaForCausalLM(config).save_pretrained(staging)
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


def random_models_dir(models_dir: pathlib.Path) -> pathlib.Path:
    """`models_dir` with the random tiny GPT-2 in it (RANDOM_GPT2), as a test's MODELS_DIR."""
    build_tiny_model(models_dir / RANDOM_GPT2)
    return models_dir


def greedy_continuation(model, tokenizer, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """transformers' `generate`, greedy, on one prompt: the new tokens up to the end-of-text token."""
    import torch

    with torch.inference_mode():
        output = model.generate(torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids),
                                dtype=torch.long), max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.eos_token_id)
    new = output[0, len(prompt_ids):].tolist()
    return new[:new.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in new else new


# What train_tiny_adapter teaches (and the tests ask about).
FACTS = [("What is the capital of France?", "Paris is the capital of France.", "Paris"),
         ("Who came into the harbour?", "The ship came into the harbour.", "The ship"),
         ("What was calm?", "The sea was calm and the sky was clear.", "The sea"),
         ("Who looked at the sea?", "Edmond looked at the sea.", "Edmond")]
# The first fact asked through the REST API, with a short answer: for checks that count many requests.
FACT_QUESTION = {"question": FACTS[0][0], "context": FACTS[0][1], "max_new_tokens": 8}
# An SFT job (REST body or TrainSftRequest fields) that trains the stand-in in seconds.
TINY_SFT = {"max_examples": 16, "num_train_epochs": 1, "max_length": 96, "learning_rate": 0.005, "lora_r": 4}


def train_tiny_adapter(models_dir: pathlib.Path, name: str, steps: int = 30, seed: int = 0,
                       answer: str | None = None) -> str:
    """A LoRA adapter on MODELS_DIR's random tiny GPT-2, trained for a few steps on the format (prompt + completion,
    loss on the completion), saved as safetensors and published as the current version of `name`. With `answer`,
    it learns to give that answer to every question (adapters that answer differently). Returns the version."""
    import torch

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains many times faster on one thread than on two
    try:
        return _train_and_publish(models_dir, name, steps, answer)
    finally:
        torch.set_num_threads(threads)


def _train_and_publish(models_dir: pathlib.Path, name: str, steps: int, answer: str | None) -> str:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from services.trainer.training.models import lora_config

    base = models_dir / RANDOM_GPT2
    tokenizer = AutoTokenizer.from_pretrained(base)
    base_model = AutoModelForCausalLM.from_pretrained(base)
    base_fingerprint = fingerprint(base_model.config)
    model = get_peft_model(base_model, lora_config(8, base_model))
    examples = []
    for question, context, fact in FACTS:
        prompt = tokenizer(qa_prompt(question, context))["input_ids"]
        completion = tokenizer(qa_completion(answer or fact))["input_ids"] + [tokenizer.eos_token_id]
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
    adapters.write_base_record(staged, str(base), base_fingerprint)
    return adapters.publish(models_dir, name, staged)


def save_random_lora(model, out_dir: pathlib.Path, rank: int, seed: int, targets: list[str] | None = None,
                     **options) -> pathlib.Path:
    """A LoRA adapter of random weights (both A and B: it changes every output it touches) on `model` (a
    transformers model; left unchanged), saved in peft's format into `out_dir`, as training saves adapters. Its
    targets are what training adapts on that architecture unless `targets` names others."""
    import torch
    from peft import get_peft_model

    from services.trainer.training.models import lora_config

    torch.manual_seed(seed)
    config = lora_config(rank, model)
    config.init_lora_weights = False
    if targets is not None:
        config.target_modules = set(targets)
    for key, value in options.items():
        setattr(config, key, value)
    peft_model = get_peft_model(model, config)
    try:
        peft_model.save_pretrained(out_dir)
    finally:
        peft_model.unload()
    return pathlib.Path(out_dir)


def publish_random_adapters(models_dir: pathlib.Path, base_folder: pathlib.Path, count: int) -> list[str]:
    """`count` adapters of random weights on the base, published as a00, a01, ...: what a step costs does not depend
    on what the weights say."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from services.trainer.training.models import lora_config

    base = AutoModelForCausalLM.from_pretrained(base_folder)
    record = (str(base_folder), fingerprint(base.config))
    model = get_peft_model(base, lora_config(16, base))
    names = [f"a{i:02d}" for i in range(count)]
    for seed, name in enumerate(names):
        torch.manual_seed(seed)
        for parameter_name, parameter in model.named_parameters():
            if "lora_B" in parameter_name:
                torch.nn.init.normal_(parameter, std=1e-3)
        staged = adapters.staging_dir(models_dir, name)
        model.save_pretrained(staged)
        adapters.write_base_record(staged, *record)
        adapters.publish(models_dir, name, staged)
    return names
