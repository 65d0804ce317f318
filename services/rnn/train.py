"""python -m services.rnn.train — trains the LSTM on CORPUS and writes MODELS_DIR/rnn/ atomically.

    python -m services.rnn.train                  # the default model (CORPUS, CORPUS_CHAPTERS, MODELS_DIR)
    python -m services.rnn.train --if-missing     # only when MODELS_DIR/rnn holds no model yet
    python -m services.rnn.train --corpus my.txt --chapters '' --epochs 5 --models-dir /tmp/models
"""
import argparse
import copy
import datetime
import logging
import math
import pathlib
import sys
import time

import torch
from torch import nn
from tqdm import tqdm

from services.common.corpus import load_corpus
from services.common.words import tokenize
from services.rnn import artifacts
from services.rnn.config import RnnConfig
from services.rnn.model import LstmLanguageModel
from services.rnn.vocab import UNK_ID, Vocabulary

DEFAULT_EPOCHS = 40
# Stop when validation perplexity has not improved for this many epochs and keep the best epoch's weights: on the
# ~10k-word fallback corpus the model starts to overfit after ~17 epochs.
DEFAULT_PATIENCE = 5
DEFAULT_VOCAB_SIZE = 10_000
SEQ_LEN = 30
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
VALIDATION_FRACTION = 0.1
# One thread by default: on 2 shared cores torch's second thread spin-waits whenever another process holds a core,
# and training then ran 3-40x slower (measured: ~30k words/s with 1 thread; 0.8k-12k with 2 under load).
DEFAULT_THREADS = 1
TOKENIZER = "services.common.words.tokenize: lower-cased \\w+ words, punctuation dropped (as the bigram service)"


def split(ids: torch.Tensor, validation_fraction: float, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last `validation_fraction` of the words are held out."""
    held_out = max(2, round(len(ids) * validation_fraction))
    train, validation = ids[:-held_out], ids[-held_out:]
    if len(train) < seq_len + 1:
        raise ValueError(f"the corpus is too small: {len(ids)} words leave {len(train)} for training, "
                         f"fewer than one sequence of {seq_len} + 1")
    return train, validation


def batches(ids: torch.Tensor, seq_len: int, batch_size: int, generator: torch.Generator):
    """Shuffled (inputs, targets) batches of windows seq_len + 1 long; a random start offset each epoch so the
    window boundaries move."""
    offset = int(torch.randint(0, seq_len, (), generator=generator)) if len(ids) > 2 * seq_len + 1 else 0
    count = (len(ids) - offset - 1) // seq_len
    windows = torch.stack([ids[offset + i * seq_len: offset + i * seq_len + seq_len + 1] for i in range(count)])
    windows = windows[torch.randperm(count, generator=generator)]
    for start in range(0, count, batch_size):
        chunk = windows[start:start + batch_size]
        yield chunk[:, :-1], chunk[:, 1:]


@torch.inference_mode()
def perplexity(model: LstmLanguageModel, ids: torch.Tensor) -> float:
    """exp(mean cross-entropy) of each word given all the words before it in `ids`, the state carried through."""
    was_training = model.training
    model.eval()
    logits, _ = model(ids[:-1].unsqueeze(0))
    loss = nn.functional.cross_entropy(logits[0], ids[1:])
    model.train(was_training)
    return math.exp(loss.item())


def _train_epoch(model: LstmLanguageModel, optimizer: torch.optim.Optimizer, epoch_batches, bar: tqdm,
                 epoch_label: str) -> float:
    """One pass over an epoch's (inputs, targets) batches; returns the mean loss per predicted word."""
    loss_fn = nn.CrossEntropyLoss()
    total_loss, total_words = 0.0, 0
    for inputs, targets in epoch_batches:
        logits, _ = model(inputs)
        loss = loss_fn(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * targets.numel()
        total_words += targets.numel()
        bar.set_postfix(epoch=epoch_label, loss=f"{loss.item():.3f}", refresh=False)
        bar.update(targets.numel())
    return total_loss / total_words


def _train_until_no_gain(model: LstmLanguageModel, train_ids: torch.Tensor, validation_ids: torch.Tensor, *,
                         epochs: int, patience: int, seq_len: int, batch_size: int, learning_rate: float,
                         generator: torch.Generator, progress: bool) -> tuple[list[dict], dict]:
    """Trains epoch by epoch until `patience` epochs bring no better validation perplexity (0: every epoch), then
    loads the best epoch's weights into `model` (the last epoch's with patience 0). Returns each epoch's record and
    the kept one's."""
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history = []
    best = {"validation_perplexity": math.inf}
    best_weights = None
    bar = tqdm(total=epochs * (len(train_ids) - 1), unit="word", unit_scale=True, disable=not progress,
               desc="training LSTM", file=sys.stderr, dynamic_ncols=True)
    model.train()
    for epoch in range(1, epochs + 1):
        epoch_batches = batches(train_ids, seq_len, batch_size, generator)
        epoch_loss = _train_epoch(model, optimizer, epoch_batches, bar, f"{epoch}/{epochs}")
        validation_perplexity = perplexity(model, validation_ids)
        history.append({"epoch": epoch, "train_loss": round(epoch_loss, 4),
                        "validation_perplexity": round(validation_perplexity, 2)})
        bar.set_postfix(epoch=f"{epoch}/{epochs}", loss=f"{epoch_loss:.3f}", val_ppl=f"{validation_perplexity:.1f}")
        if validation_perplexity < best["validation_perplexity"] or not patience:
            best, best_weights = history[-1], copy.deepcopy(model.state_dict())
        elif epoch - best["epoch"] >= patience:
            # The bar's ETA assumed every epoch would run; say why it ends short of 100%.
            bar.set_postfix_str(f"stopped early: no gain for {patience} epochs, keeping epoch {best['epoch']} "
                                f"(val_ppl {best['validation_perplexity']})")
            break
    bar.close()
    model.load_state_dict(best_weights)
    return history, best


def train(text: str, *, epochs: int = DEFAULT_EPOCHS, vocab_size: int = DEFAULT_VOCAB_SIZE, seq_len: int = SEQ_LEN,
          batch_size: int = BATCH_SIZE, learning_rate: float = LEARNING_RATE,
          validation_fraction: float = VALIDATION_FRACTION, patience: int = DEFAULT_PATIENCE, seed: int = 0,
          progress: bool = True) -> artifacts.TrainedModel:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    tokens = tokenize(text)
    vocab = Vocabulary.build(tokens, vocab_size)
    train_ids, validation_ids = split(torch.tensor(vocab.encode(tokens)), validation_fraction, seq_len)
    model = LstmLanguageModel(len(vocab))
    initial_perplexity = perplexity(model, validation_ids)
    started = time.perf_counter()
    history, best = _train_until_no_gain(model, train_ids, validation_ids, epochs=epochs, patience=patience,
                                         seq_len=seq_len, batch_size=batch_size, learning_rate=learning_rate,
                                         generator=generator, progress=progress)
    seconds = time.perf_counter() - started
    model.eval()
    metadata = {
        "epochs": best["epoch"],  # the epoch whose weights were kept
        "epochs_run": len(history),
        "max_epochs": epochs,
        "patience": patience,
        "final_train_loss": best["train_loss"],
        "validation_perplexity": best["validation_perplexity"],
        "untrained_validation_perplexity": round(initial_perplexity, 2),
        "vocab_size": len(vocab),
        "corpus_words": len(tokens),
        "train_words": len(train_ids),
        "validation_words": len(validation_ids),
        "validation_unknown_words": int((validation_ids == UNK_ID).sum()),
        "seq_len": seq_len,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "words_per_second": round(len(history) * (len(train_ids) - 1) / seconds),
        "tokenizer": TOKENIZER,
        "torch_version": torch.__version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "history": history,
    }
    return artifacts.TrainedModel(model, vocab, metadata)


def parse_args(argv: list[str] | None, config: RnnConfig) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.rnn.train", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--corpus", default=config.corpus, help="path or http(s) URL (env CORPUS)")
    parser.add_argument("--chapters", default=config.corpus_chapters,
                        help="'first-last' chapters to keep, '' = all (env CORPUS_CHAPTERS)")
    parser.add_argument("--models-dir", type=pathlib.Path, default=config.models_dir,
                        help="the model goes to MODELS_DIR/rnn (env MODELS_DIR)")
    parser.add_argument("--if-missing", action="store_true", help="do nothing when MODELS_DIR/rnn holds a model")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=DEFAULT_PATIENCE,
                        help="stop after this many epochs without a better validation perplexity and keep the best "
                             "epoch; 0 = run every epoch and keep the last")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="<pad> and <unk> included")
    parser.add_argument("--seq-len", type=int, default=SEQ_LEN)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch intra-op threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in CI logs)")
    args = parser.parse_args(argv)
    for name in ("epochs", "vocab_size", "seq_len", "batch_size", "threads"):
        if getattr(args, name) < (3 if name == "vocab_size" else 1):
            parser.error(f"--{name.replace('_', '-')} is too small (got {getattr(args, name)})")
    if args.patience < 0:
        parser.error(f"--patience must be >= 0 (got {args.patience})")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be > 0 (got {args.learning_rate})")
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv, RnnConfig.from_env())
    target = artifacts.model_dir(args.models_dir)
    if args.if_missing and artifacts.exists(target):
        print(f"LSTM model already at {target}; not retraining (drop --if-missing to retrain)")
        return
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus, args.models_dir, args.chapters)
    print(f"corpus: {corpus.source} ({len(corpus.text.split())} words, sha256 {corpus.sha256[:12]}…)")
    try:
        trained = train(corpus.text, epochs=args.epochs, vocab_size=args.vocab_size, seq_len=args.seq_len,
                        batch_size=args.batch_size, learning_rate=args.learning_rate, patience=args.patience,
                        seed=args.seed,
                        progress=not args.no_progress)
    except ValueError as error:
        raise SystemExit(f"cannot train: {error}") from None
    trained.metadata.update(corpus_source=corpus.source, corpus_sha256=corpus.sha256,
                            corpus_chapters=args.chapters, corpus_warning=corpus.warning)
    artifacts.save(target, trained)
    m = trained.metadata
    print(f"saved {target}: vocabulary {m['vocab_size']}, epoch {m['epochs']} of {m['epochs_run']} run kept, "
          f"{m['train_seconds']} s, "
          f"final train loss {m['final_train_loss']}, validation perplexity {m['validation_perplexity']} "
          f"(untrained {m['untrained_validation_perplexity']})")


if __name__ == "__main__":
    main()
