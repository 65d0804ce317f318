"""Cut data/squad_train_slice/{train,validation}.json out of SQuAD v1.1's train file: whole articles, unchanged.

    .venv/bin/python data/squad_train_slice/build.py slice SOURCE.json [SOURCE.json ...] [--out DIR]
    .venv/bin/python data/squad_train_slice/build.py tuning --out DIR

Each SOURCE is SQuAD v1.1's `train-v1.1.json`, whole, cut off after its first articles, or a copy holding only some
of its articles (README.md names the copies this slice was made from): articles are read one by one and the first
incomplete one ends the reading. The articles below are copied as they are, in SQuAD's own nested layout ({"version", "data": [{"title", "paragraphs":
[{"context", "qas": [...]}]}]}). Validation holds whole articles that training never sees. Nothing comes from
SQuAD's dev split, which stays for evaluation.

`tuning` splits the shipped train.json once more for choosing hyperparameters: its last article
(TUNING_ARTICLE) becomes a held-out split of its own, so that no choice ever looks at the validation articles.
"""
import argparse
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
TRAIN_ARTICLES = ("University_of_Notre_Dame", "Beyoncé", "IPod", "Spectre_(2015_film)", "Frédéric_Chopin",
                  "Sino-Tibetan_relations_during_the_Ming_dynasty", "2008_Sichuan_earthquake", "United_Methodist_Church",
                  "Force", "Antibiotics")
VALIDATION_ARTICLES = ("Montana", "Genocide", "The_Legend_of_Zelda:_Twilight_Princess")
TUNING_ARTICLE = TRAIN_ARTICLES[-1]


def read_articles(source: pathlib.Path) -> dict[str, dict]:
    """title -> article, for every complete article of `source` (a possibly truncated train-v1.1.json)."""
    text = source.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    position = text.index("[", text.index('"data"')) + 1
    articles = {}
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return articles
        try:
            article, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:  # the cut-off end of a truncated copy
            return articles
        articles[article["title"]] = article


def read_sources(sources: list[pathlib.Path]) -> dict[str, dict]:
    """title -> article over every source; an article two sources both carry must be the same in each."""
    articles = {}
    for source in sources:
        for title, article in read_articles(source).items():
            if articles.setdefault(title, article) != article:
                raise SystemExit(f"{source}: its article {title!r} differs from an earlier source's")
    return articles


def write_split(articles: dict[str, dict], titles: tuple[str, ...], path: pathlib.Path) -> int:
    missing = [title for title in titles if title not in articles]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not among the complete articles of the source")
    document = {"version": "1.1", "data": [articles[title] for title in titles]}
    path.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return sum(len(p["qas"]) for title in titles for p in articles[title]["paragraphs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    slicing = commands.add_parser("slice", help="write train.json and validation.json from SQuAD's train file")
    slicing.add_argument("sources", type=pathlib.Path, nargs="+",
                         help="copies of SQuAD v1.1's train-v1.1.json (whole, truncated, or some of its articles)")
    slicing.add_argument("--out", type=pathlib.Path, default=HERE)
    tuning = commands.add_parser("tuning", help=f"split the shipped train.json: {TUNING_ARTICLE} held out")
    tuning.add_argument("--out", type=pathlib.Path, required=True)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    if arguments.command == "slice":
        articles = read_sources(arguments.sources)
        splits = (("train", TRAIN_ARTICLES), ("validation", VALIDATION_ARTICLES))
    else:
        articles = read_articles(HERE / "train.json")
        splits = (("train", TRAIN_ARTICLES[:-1]), ("validation", (TUNING_ARTICLE,)))
    for split, titles in splits:
        count = write_split(articles, titles, arguments.out / f"{split}.json")
        print(f"{split}: {count} questions from {len(titles)} articles")


if __name__ == "__main__":
    main()
