"""Generate data/squad_sample/{train,validation}.jsonl: a small SQuAD-format set about invented places and people.

The facts and the templates are data beside this script (entities.jsonl, templates.json), read and rendered by
devtools/invented_facts.py, which also fixes the split (the stand-in's pretraining text uses them too). Contexts
and questions are built from templates with varied wording; the seed is fixed, so running

    .venv/bin/python data/squad_sample/build.py [--out DIR]

re-creates the committed files byte for byte.
"""
import argparse
import collections
import json
import pathlib

from devtools.invented_facts import sample_splits

HERE = pathlib.Path(__file__).resolve().parent


def write(splits: dict[str, list[dict]], out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [json.dumps({k: v for k, v in row.items() if not k.startswith("_")}, ensure_ascii=False)
                 for row in rows]
        (out / f"{split}.jsonl").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=HERE,
                        help="folder for train.jsonl and validation.jsonl (default: %(default)s)")
    args = parser.parse_args()
    splits = sample_splits()
    ids = [row["id"] for rows in splits.values() for row in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    write(splits, args.out)
    for split, rows in splits.items():
        types = collections.Counter(row["_type"] for row in rows)
        print(f"{split}: {len(rows)} questions on {len({row['title'] for row in rows})} entities; "
              + ", ".join(f"{kind} {count}" for kind, count in sorted(types.items())))


if __name__ == "__main__":
    main()
