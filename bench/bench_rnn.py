"""Words/s of LSTM generation: the service's stateful generator (one step per word) against re-running the whole
growing sequence for every word, as the course notebook did.

    python bench/bench_rnn.py                      # the model at MODELS_DIR/rnn (default models/rnn)
    python bench/bench_rnn.py --length 200 --repeats 5 --threads 1
"""
import argparse
import os
import pathlib
import statistics
import time

import torch

from services.common.words import tokenize
from services.rnn import artifacts
from services.rnn.generate import generate, sample_next
from services.rnn.model import LstmLanguageModel
from services.rnn.vocab import Vocabulary

START_TEXT = "the ship came into the harbour"


@torch.inference_mode()
def generate_by_rerunning(model: LstmLanguageModel, vocab: Vocabulary, start_text: str, length: int,
                          temperature: float, generator: torch.Generator) -> list[str]:
    """The notebook's way: every new word re-reads the start text and all words so far, O(length^2) steps."""
    ids = vocab.encode(tokenize(start_text))
    for _ in range(length):
        logits, _ = model(torch.tensor([ids]))
        ids.append(sample_next(logits[0, -1], temperature, generator))
    return vocab.decode(ids[-length:])


def words_per_second(run, length: int, repeats: int) -> float:
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        run(torch.Generator().manual_seed(seed))
        times.append(time.perf_counter() - started)
    return length / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=pathlib.Path, default=pathlib.Path(os.environ.get("MODELS_DIR", "models")))
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the service's RNN_TORCH_THREADS)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    directory = artifacts.model_dir(args.models_dir)
    if not artifacts.exists(directory):
        raise SystemExit(f"no model at {directory}: run `make rnn-model` or `python -m services.rnn.train` first")
    trained = artifacts.load(directory)
    model, vocab = trained.model, trained.vocab
    print(f"model {directory}: vocabulary {len(vocab)}, start text {START_TEXT!r}, length {args.length}, "
          f"temperature 1.0, torch threads {args.threads}, median of {args.repeats} runs")

    stateful = words_per_second(
        lambda g: generate(model, vocab, START_TEXT, args.length, 1.0, g), args.length, args.repeats)
    rerunning = words_per_second(
        lambda g: generate_by_rerunning(model, vocab, START_TEXT, args.length, 1.0, g), args.length, args.repeats)
    same = sum(
        generate(model, vocab, START_TEXT, args.length, 1.0, torch.Generator().manual_seed(s)).new_words
        == generate_by_rerunning(model, vocab, START_TEXT, args.length, 1.0, torch.Generator().manual_seed(s))
        for s in range(3))
    print(f"stateful (one LSTM step per word):        {stateful:10.0f} words/s")
    print(f"re-running the whole sequence per word:   {rerunning:10.0f} words/s")
    print(f"ratio:                                    {stateful / rerunning:10.1f}x")
    print(f"same words for the same seed: {same}/3 seeds")


if __name__ == "__main__":
    main()
