"""The offline stand-in for openai-community/gpt2: a small GPT-2-architecture model pretrained from scratch on text
the project ships, so that post-training has something to work on where the Hub is out of reach.

    python -m services.trainer.training pretrain [--steps 1200] [--seed 0]      (make tiny-model)

The text: the shipped corpus (data/corpus/harbour.txt) and question-answer passages about invented entities
(synthetic_qa.py), in the plain `Context/Question/Answer` form, never the fixed answer format, so the pretrained
model can answer from a passage but does not know the format. A byte-level BPE tokenizer is trained on the same
text. The result is an ordinary Hugging Face folder (config, weights, tokenizer, README.md saying what it is),
written atomically to MODELS_DIR/tiny-gpt2. It is not GPT-2: serving and training code treat it as any Hub model.
"""
import dataclasses
import math
import pathlib
import random
import time

from services.common.atomic import replacing_directory
from services.common.corpus import FALLBACK_CORPUS
from services.common.prompts import PREFIX, SUFFIX
from services.trainer.training import synthetic_qa

EOS = "<|endoftext|>"
STAND_IN_FOLDER = "tiny-gpt2"  # under MODELS_DIR
CARD = """# textgen's offline stand-in model (not GPT-2)

A GPT-2-architecture causal language model ({parameters:,} parameters: {n_layer} layers, {n_embd} wide,
{n_head} heads, {n_positions} positions, a {vocab_size}-token byte-level BPE vocabulary), pretrained from scratch by
`python -m services.trainer.training pretrain` (`make tiny-model`) for {steps} steps of {batch_size} x {block}
tokens (seed {seed}, {minutes:.1f} minutes, final loss {loss:.3f}).

Its text: the project's shipped corpus (data/corpus/harbour.txt) and {passages:,} question-answer passages about
invented entities made by the shipped SQuAD sample's generator (data/squad_sample/build.py) with new names, numbers
and recombined phrases; none of the sample's validation text. The passages use the plain form
`Context: ...` / `Question: ...` / `Answer: ...`, never the answer format that post-training teaches.

It stands in for `openai-community/gpt2` where the Hugging Face Hub cannot be reached (tests, offline machines):
`LLM_BASE_MODEL=models/tiny-gpt2`. It knows nothing beyond that text.
"""


@dataclasses.dataclass(frozen=True)
class PretrainSettings:
    steps: int = 1200
    seed: int = 0
    passages: int = 60_000
    n_layer: int = 4
    n_embd: int = 192
    n_head: int = 4
    n_positions: int = 512
    vocab_size: int = 2000
    batch_size: int = 16
    block: int = 256
    learning_rate: float = 2e-3
    warmup_steps: int = 60


def training_texts(settings: PretrainSettings) -> list[str]:
    """The corpus in paragraphs, and the passages; shuffled together."""
    corpus = [p.strip() for p in FALLBACK_CORPUS.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    texts = corpus + synthetic_qa.passages(settings.passages, settings.seed)
    random.Random(settings.seed).shuffle(texts)
    return texts


def train_tokenizer(texts: list[str], vocab_size: int, folder: pathlib.Path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    # The answer format's words are in the vocabulary (post-training uses them), not in the training text.
    bpe.train_from_iterator(texts[:20_000] + [f"{PREFIX} {SUFFIX}"] * 2, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=[EOS])
    bpe.save(str(folder / "tokenizer.json"))
    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), eos_token=EOS, bos_token=EOS,
                                   unk_token=EOS)


def _blocks(tokenizer, texts: list[str], block: int):
    """All texts, each ending with EOS, as one stream cut into rows of `block` tokens."""
    import torch

    stream = [token for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]
              for token in ids + [tokenizer.eos_token_id]]
    rows = len(stream) // block
    return torch.tensor(stream[: rows * block]).view(rows, block)


def pretrain(out_dir: pathlib.Path, settings: PretrainSettings = PretrainSettings(), show_progress: bool = True,
             torch_threads: int = 0) -> pathlib.Path:
    import torch
    from tqdm import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.monotonic()
    texts = training_texts(settings)
    with replacing_directory(pathlib.Path(out_dir)) as staging:
        tokenizer = train_tokenizer(texts, settings.vocab_size, staging)
        tokenizer.model_max_length = settings.n_positions
        blocks = _blocks(tokenizer, texts, settings.block)
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=settings.n_positions, n_layer=settings.n_layer,
                            n_embd=settings.n_embd, n_head=settings.n_head, bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
        model = GPT2LMHeadModel(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01,
                                      betas=(0.9, 0.95))

        def rate(step: int) -> float:  # linear warm-up, then cosine to a tenth
            if step < settings.warmup_steps:
                return (step + 1) / settings.warmup_steps
            progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
        model.train()
        loss = float("nan")
        with tqdm(total=settings.steps, desc="pretraining the stand-in", disable=not show_progress,
                  unit="step") as bar:
            for step in range(settings.steps):
                batch = blocks[torch.randint(len(blocks), (settings.batch_size,), generator=generator)]
                loss = model(input_ids=batch, labels=batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(CARD.format(
            parameters=sum(p.numel() for p in model.parameters()), vocab_size=len(tokenizer),
            minutes=(time.monotonic() - started) / 60, loss=loss.item(), passages=settings.passages,
            **{k: v for k, v in dataclasses.asdict(settings).items() if k not in ("passages",)}))
    return pathlib.Path(out_dir)
