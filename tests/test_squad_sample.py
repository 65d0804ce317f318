"""The shipped SQuAD-format sample: well-formed rows, disjoint splits, and reproducible from build.py."""
import collections
import json
import subprocess
import sys

import datasets
import pytest
from textgen.paths import SQUAD_SAMPLE

SPLITS = {"train": 240, "validation": 60}  # the least number of rows each split must hold
FIELDS = {"id", "title", "context", "question", "answers"}
QUESTION_TYPES = ("how many", "who", "what", "when", "where", "which", "why")


def read_split(split: str) -> list[dict]:
    lines = (SQUAD_SAMPLE / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def question_type(question: str) -> str:
    lowered = question.lower()
    return next((kind for kind in QUESTION_TYPES if lowered.startswith(kind + " ")), "other")


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return {split: read_split(split) for split in SPLITS}


@pytest.mark.parametrize("split", SPLITS)
def test_rows_have_squad_fields_and_enough_of_them(rows, split):
    assert len(rows[split]) >= SPLITS[split]
    for row in rows[split]:
        assert set(row) == FIELDS, row
        assert all(isinstance(row[field], str) and row[field].strip() for field in FIELDS - {"answers"}), row
        assert set(row["answers"]) == {"text", "answer_start"}, row
        assert len(row["answers"]["text"]) == len(row["answers"]["answer_start"]) >= 1, row


@pytest.mark.parametrize("split", SPLITS)
def test_every_answer_start_points_at_its_answer(rows, split):
    for row in rows[split]:
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"]):
            assert text and row["context"][start:start + len(text)] == text, (row["id"], text, start)
            assert text.lower() not in row["question"].lower(), (row["id"], row["question"])


def test_ids_are_unique_across_both_splits(rows):
    ids = [row["id"] for split in SPLITS for row in rows[split]]
    assert len(ids) == len(set(ids))


def test_validation_entities_are_not_in_training(rows):
    train_titles = {row["title"] for row in rows["train"]}
    validation_titles = {row["title"] for row in rows["validation"]}
    assert train_titles and validation_titles and not train_titles & validation_titles


@pytest.mark.parametrize("split", SPLITS)
def test_each_split_asks_every_kind_of_question(rows, split):
    kinds = collections.Counter(question_type(row["question"]) for row in rows[split])
    assert set(kinds) == set(QUESTION_TYPES), kinds


@pytest.mark.parametrize("split", SPLITS)
def test_datasets_json_loader_reads_the_same_rows(rows, split, tmp_path):
    loaded = datasets.load_dataset("json", data_files={split: str(SQUAD_SAMPLE / f"{split}.jsonl")},
                                   split=split, cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == len(rows[split])
    assert set(loaded.column_names) == FIELDS
    assert [dict(row) for row in loaded] == rows[split]


def test_build_script_reproduces_the_committed_files(tmp_path):
    result = subprocess.run([sys.executable, str(SQUAD_SAMPLE / "build.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for split in SPLITS:
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (SQUAD_SAMPLE / f"{split}.jsonl").read_bytes(), split
