import collections
import random

from services.baseline.model import BigramModel
from services.common.corpus import load_corpus, select_chapters
from services.common.words import tokenize
from textgen.paths import SHIPPED_CORPUS


def test_tokenize_lower_cases_and_drops_punctuation():
    assert tokenize("The Ship, the SEA!") == ["the", "ship", "the", "sea"]


def test_length_counts_the_start_word():
    model = BigramModel.train("a b a b a b a b")
    words, warning = model.generate("a", 5, random.Random(0))
    assert words == ["a", "b", "a", "b", "a"] and warning is None


def test_stops_early_at_a_word_without_successor():
    model = BigramModel.train("one two three")
    words, _ = model.generate("one", 10, random.Random(0))
    assert words == ["one", "two", "three"]


def test_unknown_start_word_is_returned_alone_with_a_warning():
    words, warning = BigramModel.train("one two").generate("Zebra", 5, random.Random(0))
    assert words == ["zebra"]
    assert "zebra" in warning.lower() and "vocabulary" in warning


def test_same_seed_same_text_and_start_word_is_case_insensitive():
    model = BigramModel.train(SHIPPED_CORPUS.read_text())
    first, _ = model.generate("The", 30, random.Random(7))
    second, _ = model.generate("the", 30, random.Random(7))
    assert first == second and first[0] == "the"


def test_samples_follow_bigram_probabilities():
    # After "the": ship 2/4, sea 1/4, sky 1/4.
    model = BigramModel.train("the ship the ship the sea the sky")
    rng = random.Random(1)
    counts = collections.Counter(model.generate("the", 2, rng)[0][1] for _ in range(8000))
    assert set(counts) == {"ship", "sea", "sky"}
    assert abs(counts["ship"] / 8000 - 0.5) < 0.03
    assert abs(counts["sea"] / 8000 - 0.25) < 0.03


def test_chapter_selection_skips_the_table_of_contents():
    text = "Contents\nChapter 1. A\nChapter 2. B\n\nChapter 1. A\nfirst\nChapter 2. B\nsecond\nChapter 3. C\nthird"
    assert select_chapters(text, "1-2") == "Chapter 1. A\nfirst\nChapter 2. B\nsecond"
    assert select_chapters("no headings here", "1-4") == "no headings here"


def test_unreachable_corpus_falls_back_to_the_shipped_one(tmp_path):
    corpus = load_corpus("http://127.0.0.1:9/unreachable.txt", tmp_path)
    assert corpus.source == str(SHIPPED_CORPUS)
    assert "unreachable.txt" in corpus.warning
    assert corpus.text.startswith("Chapter 1.") and "Chapter 5." not in corpus.text


def test_downloaded_corpus_is_cached(tmp_path):
    import http.server
    import threading

    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Chapter 1. X\nalpha beta\nChapter 5. Y\ngamma")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/book.txt"
    try:
        first = load_corpus(url, tmp_path)
        second = load_corpus(url, tmp_path)
    finally:
        server.shutdown()
    assert first.text == second.text == "Chapter 1. X\nalpha beta"
    assert first.warning is None and len(served) == 1
    assert list((tmp_path / "corpus").iterdir())
