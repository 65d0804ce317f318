"""The two post-training data sets beside json_replies: data/concise_replies (DPO pairs) and data/graded_answers (RL
prompts for a string_check grader), and their scorers. Every expectation is written out here, not computed by the code
under test; nothing loads a model."""
import json
import re
import subprocess
import sys

import pytest

from devtools.concise_replies import is_concise, score as concise_score
from devtools.graded_answers import GRADER, flat_share, passes, score as graded_score, string_check
from textgen.paths import DATA

CONCISE = DATA / "concise_replies"
GRADED = DATA / "graded_answers"
EXPECTED_GRADER = {"type": "string_check", "name": "includes_keyword", "input": "{{sample.output_text}}",
                   "reference": "{{item.keyword}}", "operation": "ilike"}


def read_jsonl(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw, f"{path.name}: one object a line, '\\n' line ends"
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def user_turn(messages: list[dict]) -> str:
    assert len(messages) == 1 and set(messages[0]) == {"role", "content"} and messages[0]["role"] == "user"
    assert messages[0]["content"].strip()
    return messages[0]["content"]


@pytest.mark.parametrize("reply", [
    "Paris is the capital of France.",
    "  Yes, it is!\n",  # whitespace around
    "It is about 9.5 trillion kilometres.",  # a decimal point is no sentence end
    'He said "stop."',  # a closing quote after the end mark
    "Is it?",
    "Well, maybe...",  # an end mark may repeat: only one followed by whitespace splits sentences
    " ".join(["word"] * 24) + " end.",  # 25 words
])
def test_concise_accepts_one_short_sentence(reply):
    assert is_concise(reply)


@pytest.mark.parametrize("reply", [
    " ".join(["word"] * 25) + " end.",  # 26 words
    "Paris. It is the capital.",  # two sentences
    "Why? Because.",
    "For e.g. apples.",  # an abbreviation ends a sentence
    "Paris is the capital\nof France.",  # two lines
    "Paris is the capital of France",  # no end mark
    "",
])
def test_concise_refuses_anything_else(reply):
    assert not is_concise(reply)


def test_concise_score_counts_rate_and_mean_words():
    assert concise_score(["Yes.", "No. Maybe.", "It is nine."]) == {
        "count": 3, "behaviour_rate": 2 / 3, "mean_words": 2.0}
    with pytest.raises(ValueError):
        concise_score([])


def test_concise_train_holds_230_dpo_pairs_that_the_scorer_separates():
    lines = read_jsonl(CONCISE / "train.jsonl")
    assert len(lines) == 230
    questions = set()
    for number, line in enumerate(lines, 1):
        assert set(line) == {"input", "preferred_output", "non_preferred_output"}, number
        assert set(line["input"]) == {"messages"}, number
        questions.add(normalized(user_turn(line["input"]["messages"])))
        preferred, rejected = line["preferred_output"], line["non_preferred_output"]
        assert len(preferred) == len(rejected) == 1, number
        assert preferred[0]["role"] == rejected[0]["role"] == "assistant", number
        assert is_concise(preferred[0]["content"]), (number, preferred)
        assert not is_concise(rejected[0]["content"]) and len(rejected[0]["content"].split()) > 25, (number, rejected)
    assert len(questions) == 230


def test_concise_heldout_has_50_new_questions():
    train = {normalized(user_turn(line["input"]["messages"])) for line in read_jsonl(CONCISE / "train.jsonl")}
    heldout = read_jsonl(CONCISE / "heldout.jsonl")
    assert len(heldout) == 50 and all(set(row) == {"messages"} for row in heldout)
    questions = {normalized(user_turn(row["messages"])) for row in heldout}
    assert len(questions) == 50 and not questions & train


@pytest.mark.parametrize("text, reference, operation, expected", [
    ("12", "12", "eq", True),
    ("12\n", "12", "eq", False),  # no strip: the rendered strings as they are
    (" 12", "12", "ne", True),
    ("A Lantern glows.", "Lantern", "like", True),
    ("A lantern glows.", "Lantern", "like", False),  # like is case-sensitive
    ("A LANTERN glows.", "lantern", "ilike", True),
    ("Lanterns glow.", "lantern", "ilike", True),  # contains: a longer word holds it
    ("A lamp glows.", "lantern", "ilike", False),
])
def test_string_check_operations(text, reference, operation, expected):
    assert string_check(text, reference, operation) is expected


def test_the_grader_is_the_one_the_readme_gives():
    assert GRADER == EXPECTED_GRADER
    readme = (GRADED / "README.md").read_text(encoding="utf-8")
    assert json.dumps(EXPECTED_GRADER) in readme
    assert passes("I saw a Copper kettle.", {"keyword": "copper"})
    assert not passes("I saw a kettle.", {"keyword": "copper"})


def test_graded_score_and_flat_groups():
    items = [{"keyword": "honey"}, {"keyword": "violin"}]
    assert graded_score([("Honey is sweet.", items[0]), ("A cello.", items[1])]) == {"count": 2, "pass_rate": 0.5}
    assert flat_share([[True, True], [False, False], [True, False], [False, True]]) == 0.5
    with pytest.raises(ValueError):
        graded_score([])


def graded_lines(name: str) -> list[dict]:
    lines = read_jsonl(GRADED / name)
    for number, line in enumerate(lines, 1):
        assert set(line) == {"messages", "keyword"}, number
        keyword = line["keyword"]
        assert isinstance(keyword, str) and re.fullmatch(r"[a-z]{4,}", keyword), (number, keyword)
        assert keyword in user_turn(line["messages"]), number  # the prompt names the word it asks for
    return lines


def test_graded_files_hold_208_and_50_disjoint_prompts():
    train, heldout = graded_lines("train.jsonl"), graded_lines("heldout.jsonl")
    assert len(train) == 208 and len(heldout) == 50
    train_prompts = {normalized(line["messages"][0]["content"]) for line in train}
    heldout_prompts = {normalized(line["messages"][0]["content"]) for line in heldout}
    assert len(train_prompts) == 208 and len(heldout_prompts) == 50 and not train_prompts & heldout_prompts
    assert not {line["keyword"] for line in train} & {line["keyword"] for line in heldout}
    assert len({line["keyword"] for line in train}) >= 50 and len({line["keyword"] for line in heldout}) >= 25


def test_the_scorers_import_without_torch():
    code = ("import sys, devtools.concise_replies, devtools.graded_answers; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
