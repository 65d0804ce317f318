"""The plain-text corpus the bigram and LSTM services learn from: a path or an http(s) URL, cached under MODELS_DIR.

The default is The Count of Monte Cristo (Project Gutenberg #1184), chapters 1-4, as the course used. Where it
cannot be downloaded, the shipped data/corpus/harbour.txt stands in, with a logged warning.
"""
import dataclasses
import hashlib
import logging
import os
import pathlib
import re
import tempfile
import urllib.request

from textgen.paths import SHIPPED_CORPUS

log = logging.getLogger("textgen.corpus")

DEFAULT_CORPUS = "https://www.gutenberg.org/cache/epub/1184/pg1184.txt"
DEFAULT_CHAPTERS = "1-4"
DOWNLOAD_TIMEOUT_SECONDS = 15


@dataclasses.dataclass(frozen=True)
class Corpus:
    text: str
    source: str  # what was actually read: the URL, the path, or the fallback path
    sha256: str
    warning: str | None = None  # set when the fallback stood in for the requested corpus


def _fetch(url: str, cache_dir: pathlib.Path) -> pathlib.Path:
    """Downloads `url` once; later calls read the cached copy. Written atomically (temp file, then rename)."""
    name = hashlib.sha256(url.encode()).hexdigest()[:12] + "-" + (pathlib.PurePosixPath(url).name or "corpus.txt")
    cached = cache_dir / name
    if cached.exists():
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        data = response.read()
    with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, cached)
    log.info("corpus downloaded", extra={"url": url, "bytes": len(data), "path": str(cached)})
    return cached


def select_chapters(text: str, chapters: str) -> str:
    """Keeps chapters `first-last` when the text has "Chapter N." headings (the body's, not a table of
    contents': the last heading of the first chapter is taken); otherwise returns the text unchanged."""
    if not chapters:
        return text
    first, _, last = chapters.partition("-")
    first, last = int(first), int(last or first)
    starts = list(re.finditer(rf"^\s*Chapter {first}\.", text, re.MULTILINE | re.IGNORECASE))
    if not starts:
        return text
    begin = starts[-1].start()
    end_match = re.compile(rf"^\s*Chapter {last + 1}\.", re.MULTILINE | re.IGNORECASE).search(text, begin)
    return text[begin : end_match.start() if end_match else len(text)].strip()


def load_corpus(corpus: str, models_dir: pathlib.Path, chapters: str = DEFAULT_CHAPTERS) -> Corpus:
    """Reads `corpus` (a path or URL); falls back to the shipped corpus when it cannot be had."""
    warning = None
    try:
        if re.match(r"^https?://", corpus):
            path = _fetch(corpus, models_dir / "corpus")
        else:
            path = pathlib.Path(corpus)
        raw = path.read_text(encoding="utf-8-sig", errors="replace")
        source = corpus
    except (OSError, ValueError) as error:
        warning = f"corpus {corpus!r} could not be read ({error}); using the shipped {SHIPPED_CORPUS.name}"
        log.warning(warning)
        raw = SHIPPED_CORPUS.read_text(encoding="utf-8")
        source = str(SHIPPED_CORPUS)
    text = select_chapters(raw, chapters)
    if not text.split():
        raise SystemExit(f"corpus {source!r} holds no words")
    return Corpus(text=text, source=source, sha256=hashlib.sha256(text.encode()).hexdigest(), warning=warning)
