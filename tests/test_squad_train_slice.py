"""The shipped slice of SQuAD v1.1's train file: real SQuAD records, whole articles, validation articles that
training never sees, and the tuning split that keeps hyperparameter choices off the validation articles."""
import json
import pathlib
import subprocess
import sys

import pytest

from services.trainer.training.data import choose_dataset, load_squad
from textgen.paths import SQUAD_TRAIN_SLICE



def articles(split: str, folder: pathlib.Path = SQUAD_TRAIN_SLICE) -> list[dict]:
    return json.loads((folder / f"{split}.json").read_text(encoding="utf-8"))["data"]


def test_it_loads_as_the_default_data_set_offline():
    assert choose_dataset("", hub_check=lambda *_: "offline").spec == str(SQUAD_TRAIN_SLICE)
    train, validation = load_squad(str(SQUAD_TRAIN_SLICE), "train"), load_squad(str(SQUAD_TRAIN_SLICE), "validation")
    assert (len(train), len(validation)) == (3665, 501)  # at least 500 held-out questions to evaluate on
    assert len({e.id for e in train + validation}) == len(train) + len(validation)


def squashed(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("split", ["train", "validation"])
def test_every_answer_is_where_squad_says_it_is(split):
    for article in articles(split):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                assert qa["question"].strip() and qa["answers"]
                for answer in qa["answers"]:
                    start = answer["answer_start"]
                    # Three answers of the second source differ from their context in whitespace alone (README.md).
                    assert squashed(paragraph["context"][start:]).startswith(squashed(answer["text"])), qa["id"]


def test_validation_articles_are_whole_and_unseen_in_training():
    train, validation = articles("train"), articles("validation")
    assert {a["title"] for a in validation} == {"Montana", "Genocide", "The_Legend_of_Zelda:_Twilight_Princess"}
    assert not {a["title"] for a in train} & {a["title"] for a in validation}
    train_paragraphs = {p["context"] for a in train for p in a["paragraphs"]}
    assert not any(p["context"] in train_paragraphs for a in validation for p in a["paragraphs"])


def test_the_tuning_split_holds_out_a_train_article_and_never_touches_validation(tmp_path):
    done = subprocess.run([sys.executable, str(SQUAD_TRAIN_SLICE / "build.py"), "tuning", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    tuning_train, held_out = articles("train", tmp_path), articles("validation", tmp_path)
    assert [a["title"] for a in held_out] == ["Antibiotics"]
    assert {a["title"] for a in tuning_train + held_out} == {a["title"] for a in articles("train")}
