"""The offline stand-in for openai-community/gpt2: a small GPT-2-architecture model pretrained from scratch on text
the project ships, so that post-training has something to work on where the Hub is out of reach.

    python -m devtools.post_training pretrain [--steps 1000] [--seed 0]      (make tiny-model)

The text: the shipped corpus (data/corpus/harbour.txt) and question-answer passages about invented entities
(synthetic_qa.py), in the plain `Context/Question/Answer` form, never the fixed answer format, so the pretrained
model can answer from a passage but does not know the format. The answers' tokens weigh more in the loss: they are
a few tokens after a long passage, and reading the passage is what they teach. A byte-level BPE tokenizer is
trained on the same text. The result is an ordinary Hugging Face folder (config, weights, tokenizer, README.md
saying what it is), written atomically to MODELS_DIR/tiny-gpt2. It is not GPT-2: serving and training code treat it
as any Hub model.
"""
import dataclasses
import json
import math
import pathlib
import random
import time

from devtools.post_training import synthetic_qa
from services.common.atomic import replacing_directory
from services.common.embedded_model import RECIPE_FILE
from services.common.prompts import PREFIX, SUFFIX
from textgen.paths import SHIPPED_CORPUS

EOS = "<|endoftext|>"
# The hyperparameters post-training uses on this model (RECIPE_FILE beside it, read by `post-train`), chosen
# on a held-out slice of the train split (7 of its 40 entities), never on validation. They differ from GPT-2's
# documented defaults, which the REST endpoints keep: a model this small takes a far higher learning rate, and more
# epochs, to learn the format with LoRA.
RECIPE = {"sft": {"max_examples": 310, "num_train_epochs": 6, "max_length": 256, "learning_rate": 3e-3, "lora_r": 16},
          "rl": {"steps": 300, "max_new_tokens": 64, "use_dataset_prompts": True, "max_prompt_examples": 310,
                 "learning_rate": 3e-4, "temperature": 0.3, "num_generations": 8,
                 # Chosen with the reward parts weighing alike, as they did before they had weights.
                 "prefix_weight": 1.0, "suffix_weight": 1.0, "clean_end_weight": 1.0, "answer_weight": 1.0}}
CARD = """# textgen's offline stand-in model (not GPT-2)

A GPT-2-architecture causal language model ({parameters:,} parameters: {n_layer} layers, {n_embd} wide,
{n_head} heads, {n_positions} positions, a {vocab_size}-token byte-level BPE vocabulary), pretrained from scratch by
`python -m devtools.post_training pretrain` (`make tiny-model`) for {steps} steps of {batch_size} x {block}
tokens (AdamW, learning rate {learning_rate}, answer tokens weighted {answer_weight} x in the loss; seed {seed},
{minutes:.1f} minutes, final weighted loss {loss:.3f}).

Its text: the project's shipped corpus (data/corpus/harbour.txt) and {passages:,} question-answer passages about
invented entities: the shipped SQuAD sample's templates (data/squad_sample/templates.json) filled with new names,
numbers and recombined phrases; none of the sample's validation text. The passages use the plain form
`Context: ...` / `Question: ...` / `Answer: ...`, never the answer format that post-training teaches.

It stands in for `openai-community/gpt2` where the Hugging Face Hub cannot be reached (tests, offline machines):
`LLM_BASE_MODEL=models/tiny-gpt2`. It knows nothing beyond that text, and it does not copy an unseen name or
phrase out of a passage: it answers with what its text made likely.

`{recipe_file}` holds the hyperparameters `make post-train` uses on it (not the REST endpoints' defaults,
which are GPT-2's): {recipe}
"""


@dataclasses.dataclass(frozen=True)
class PretrainSettings:
    steps: int = 1000
    seed: int = 0
    passages: int = 30_000
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 512
    vocab_size: int = 2000
    batch_size: int = 8
    block: int = 256
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    # An answer is a few tokens after a long passage; weighting its tokens (and the end after it) teaches reading
    # the passage far sooner than the plain language-model loss does.
    answer_weight: float = 5.0


def training_texts(settings: PretrainSettings) -> list[list[tuple[str, bool]]]:
    """Documents as (text, is_answer) segments, shuffled: the corpus in paragraphs, and the passages."""
    corpus = [[(p.strip(), False)] for p in SHIPPED_CORPUS.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    texts = corpus + synthetic_qa.passages(settings.passages, settings.seed)
    random.Random(settings.seed).shuffle(texts)
    return texts


def train_tokenizer(texts: list[list[tuple[str, bool]]], vocab_size: int, folder: pathlib.Path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    # The answer format's words are in the vocabulary (post-training uses them), not in the training text.
    bpe.train_from_iterator(["".join(text for text, _ in document) for document in texts[:20_000]]
                            + [f"{PREFIX} {SUFFIX}"] * 2,
                            vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS])
    bpe.save(str(folder / "tokenizer.json"))
    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), eos_token=EOS, bos_token=EOS,
                                   unk_token=EOS)


def _blocks(tokenizer, texts: list[list[tuple[str, bool]]], block: int, answer_weight: float):
    """Rows of `block` tokens, each filled with whole documents (an answer's passage is never in another row),
    every document ending with EOS, the rest padded; and each token's weight in the loss: `answer_weight` for
    answers' tokens and the EOS after a last answer, 0 for padding. A document longer than a row is cut."""
    import torch

    segments = [text for document in texts for text, _ in document]
    ids = iter(tokenizer(segments, add_special_tokens=False)["input_ids"])
    rows, row_weights, row, weights = [], [], [], []
    for document in texts:
        tokens, document_weights = [], []
        for _, is_answer in document:
            segment = next(ids)
            tokens += segment
            document_weights += [answer_weight if is_answer else 1.0] * len(segment)
        tokens.append(tokenizer.eos_token_id)
        document_weights.append(answer_weight if document[-1][1] else 1.0)
        tokens, document_weights = tokens[:block], document_weights[:block]
        if len(row) + len(tokens) > block:
            rows.append(row + [tokenizer.eos_token_id] * (block - len(row)))
            row_weights.append(weights + [0.0] * (block - len(weights)))
            row, weights = [], []
        row, weights = row + tokens, weights + document_weights
    return torch.tensor(rows), torch.tensor(row_weights)


def weighted_loss(model, ids, weights):
    """Next-token cross-entropy, each target token weighted."""
    import torch

    logits = model(input_ids=ids).logits[:, :-1]
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                               reduction="none")
    target_weights = weights[:, 1:].reshape(-1)
    return (losses * target_weights).sum() / target_weights.sum()


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
        blocks, weights = _blocks(tokenizer, texts, settings.block, settings.answer_weight)
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
                rows = torch.randint(len(blocks), (settings.batch_size,), generator=generator)
                loss = weighted_loss(model, blocks[rows], weights[rows])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / RECIPE_FILE).write_text(json.dumps(RECIPE, indent=2) + "\n")
        (staging / "README.md").write_text(CARD.format(recipe=json.dumps(RECIPE), recipe_file=RECIPE_FILE,
            parameters=sum(p.numel() for p in model.parameters()), vocab_size=len(tokenizer),
            minutes=(time.monotonic() - started) / 60, loss=loss.item(), passages=settings.passages,
            **{k: v for k, v in dataclasses.asdict(settings).items() if k not in ("passages", "vocab_size")}))
    return pathlib.Path(out_dir)
