"""The LSTM itself, in process: training, perplexity, the saved model, and the sampler's guarantees."""
import json
import math

import pytest
import torch

from services.common.words import tokenize
from services.rnn import artifacts
from services.rnn.generate import generate, sample_next
from services.rnn.model import LstmLanguageModel
from services.rnn.train import perplexity, split, train
from services.rnn.vocab import PAD_ID, UNK, UNK_ID, Vocabulary
from textgen.paths import SHIPPED_CORPUS

# The shipped corpus (~11k words): 4 epochs at a high learning rate take a few seconds and already generalise.
TEXT = SHIPPED_CORPUS.read_text(encoding="utf-8")
SHORT_TEXT = " ".join(TEXT.split()[:2500])
EPOCHS = 4


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """As the training CLI does: a second thread spin-waits whenever the shared CI cores are busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained():
    return train(TEXT, epochs=EPOCHS, patience=0, learning_rate=1e-2, progress=False)


def test_training_lowers_the_loss(trained):
    losses = [epoch["train_loss"] for epoch in trained.metadata["history"]]
    assert len(losses) == EPOCHS
    assert losses[-1] < losses[0] - 1.0
    assert trained.metadata["final_train_loss"] == losses[-1]


def test_held_out_perplexity_is_far_below_an_untrained_models(trained):
    meta = trained.metadata
    assert meta["validation_words"] == round(0.1 * meta["corpus_words"])
    # An untrained model is about uniform over the vocabulary; the trained one must have learnt the text.
    assert meta["untrained_validation_perplexity"] > 0.5 * meta["vocab_size"]
    assert meta["validation_perplexity"] < 0.25 * meta["untrained_validation_perplexity"]
    ids = torch.tensor(trained.vocab.encode(tokenize(TEXT)[-200:]))  # inside the held-out tenth
    random_model = LstmLanguageModel(len(trained.vocab))
    assert perplexity(trained.model, ids) < 0.25 * perplexity(random_model, ids)


def test_early_stopping_keeps_the_best_epoch():
    result = train(SHORT_TEXT, epochs=40, patience=2, learning_rate=3e-2, progress=False)
    history = result.metadata["history"]
    best = min(history, key=lambda epoch: epoch["validation_perplexity"])
    assert result.metadata["epochs"] == best["epoch"]
    assert result.metadata["validation_perplexity"] == best["validation_perplexity"]
    assert len(history) == best["epoch"] + 2 < 40  # a high learning rate overfits within a few epochs


def test_saved_model_round_trips(trained, tmp_path):
    target = artifacts.model_dir(tmp_path)
    artifacts.save(target, trained)
    loaded = artifacts.load(target)
    assert loaded.vocab.words == trained.vocab.words
    metadata = json.loads((target / artifacts.METADATA).read_text())
    assert metadata["vocab_size"] == len(trained.vocab) and metadata["hidden_dim"] == 128
    ids = torch.tensor([trained.vocab.encode(["the", "ship", "came"])])
    with torch.inference_mode():
        assert torch.equal(trained.model(ids)[0], loaded.model(ids)[0])
    first = generate(trained.model, trained.vocab, "the ship", 30, 1.0, torch.Generator().manual_seed(5))
    again = generate(loaded.model, loaded.vocab, "the ship", 30, 1.0, torch.Generator().manual_seed(5))
    assert first == again


def test_save_replaces_atomically_and_a_failed_save_keeps_the_old_model(trained, tmp_path, monkeypatch):
    target = artifacts.model_dir(tmp_path)
    artifacts.save(target, trained)
    artifacts.save(target, trained)  # replacing an existing model
    assert [p.name for p in tmp_path.iterdir()] == ["rnn"]

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.Vocabulary, "save", crash)
    with pytest.raises(OSError):
        artifacts.save(target, trained)
    assert [p.name for p in tmp_path.iterdir()] == ["rnn"]  # no staging folder left behind
    assert artifacts.load(target).vocab.words == trained.vocab.words


def test_load_of_a_missing_model_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        artifacts.load(artifacts.model_dir(tmp_path))


def test_vocabulary_keeps_the_most_frequent_words_after_the_specials():
    vocab = Vocabulary.build("b a c a b a d".split(), max_size=4)
    assert vocab.words == ["<pad>", UNK, "a", "b"]
    assert vocab.encode(["a", "zebra"]) == [2, UNK_ID]


def test_generation_gives_exactly_length_words_and_reports_unknown_words(trained):
    result = generate(trained.model, trained.vocab, "Zanzibar the", 50, 1.0, torch.Generator().manual_seed(1))
    assert len(result.new_words) == 50
    assert all(word in trained.vocab for word in result.new_words)
    assert UNK not in result.new_words and "<pad>" not in result.new_words
    assert "zanzibar" in result.warning
    assert generate(trained.model, trained.vocab, "the", 1, 1.0, torch.Generator()).warning is None


def test_sampler_never_emits_pad_or_unk_even_when_they_score_highest():
    logits = torch.tensor([50.0, 50.0, 0.0, 1.0])
    generator = torch.Generator().manual_seed(0)
    draws = {sample_next(logits, 5.0, generator) for _ in range(200)}
    assert draws == {2, 3}
    assert PAD_ID not in draws and UNK_ID not in draws


def test_a_tiny_temperature_is_greedy_without_nans():
    logits = torch.tensor([0.0, 0.0, 3.0, 2.9, -1.0])
    assert {sample_next(logits, 1e-300, torch.Generator().manual_seed(s)) for s in range(20)} == {2}


def test_split_holds_out_the_last_tenth_and_refuses_a_corpus_too_small():
    train_ids, held_out = split(torch.arange(100), 0.1, seq_len=30)
    assert held_out.tolist() == list(range(90, 100)) and len(train_ids) == 90
    with pytest.raises(ValueError, match="too small"):
        split(torch.arange(20), 0.1, seq_len=30)


def test_perplexity_of_a_uniform_predictor_is_the_vocabulary_size():
    model = LstmLanguageModel(4)
    ids = torch.tensor([2, 3, 2, 3, 2, 3])
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.fill_(-1e4)
    assert math.isclose(perplexity(model, ids), 4.0, rel_tol=1e-3)


def test_carrying_the_state_gives_the_same_words_as_rerunning_the_whole_sequence(trained):
    model, vocab = trained.model, trained.vocab
    ids = vocab.encode(tokenize("the ship came into"))
    generator = torch.Generator().manual_seed(11)
    with torch.inference_mode():
        for _ in range(40):
            logits, _ = model(torch.tensor([ids]))  # the course notebook's O(length^2) way
            ids.append(sample_next(logits[0, -1], 0.9, generator))
    stateful = generate(model, vocab, "the ship came into", 40, 0.9, torch.Generator().manual_seed(11))
    assert stateful.new_words == vocab.decode(ids[-40:])
