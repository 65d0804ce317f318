"""The JSON-replies data set (data/json_replies) and its scorer: what the scorer accepts and refuses, and the shipped
files' shape. Every expectation is written out here, not computed by the code under test."""
import json
import re
import subprocess
import sys

import pytest

from devtools.json_replies import TOPICS, reply_shape, score
from textgen.paths import DATA

FOLDER = DATA / "json_replies"
EXPECTED_TOPICS = {"science", "history", "geography", "cooking", "health", "technology", "language", "sport"}
ROLES = {"system", "user", "assistant"}


@pytest.mark.parametrize("reply, expected", [
    ('{"topic": "science", "answer": "Water boils at 100 degrees Celsius at sea level."}',
     {"topic": "science", "answer": "Water boils at 100 degrees Celsius at sea level."}),
    ('{"answer": "Canberra.", "topic": "geography"}', {"topic": "geography", "answer": "Canberra."}),  # key order
    ('{"topic":"sport","answer":"Eleven players."}', {"topic": "sport", "answer": "Eleven players."}),  # compact
    ('  \n{"topic": "language", "answer": "Déjà vu means already seen."}\n ',  # whitespace around, non-ASCII
     {"topic": "language", "answer": "Déjà vu means already seen."}),
    ('{\n  "topic": "cooking",\n  "answer": "Whisk it."\n}', {"topic": "cooking", "answer": "Whisk it."}),
])
def test_reply_shape_accepts_one_object_with_topic_and_answer(reply, expected):
    assert reply_shape(reply) == expected


@pytest.mark.parametrize("reply", [
    '{"topic": "science", "answer": "Light scatters.", "confidence": 0.9}',  # an extra key
    '{"topic": "science"}',  # no answer
    '{"answer": "Light scatters."}',  # no topic
    '{"topic": "music", "answer": "A chord is three notes."}',  # a topic outside the list
    '{"topic": "Science", "answer": "Light scatters."}',  # topics are lower case
    '{"topic": "science", "answer": ""}',  # an empty answer
    '{"topic": "science", "answer": "   "}',  # an answer of spaces
    '{"topic": "science", "answer": 42}',  # an answer that is not a string
    '{"topic": ["science"], "answer": "Light scatters."}',  # a topic that is not a string
    '{"topic": "science", "answer": "A."}{"topic": "history", "answer": "B."}',  # two objects
    '{"topic": "science", "answer": "A."}\n{"topic": "science", "answer": "A."}',  # two objects, two lines
    'Sure! {"topic": "science", "answer": "Light scatters."}',  # prose before
    '{"topic": "science", "answer": "Light scatters."} Hope this helps!',  # prose after
    '```json\n{"topic": "science", "answer": "Light scatters."}\n```',  # a code fence
    "{'topic': 'science', 'answer': 'Light scatters.'}",  # not JSON: single quotes
    '{"topic": "science", "answer": "Light scatters.",}',  # not JSON: trailing comma
    '{"topic": "science", "answer": "Light scatters."',  # not JSON: unclosed
    '[{"topic": "science", "answer": "Light scatters."}]',  # an array, not an object
    '"science"',  # a JSON string
    "The sky is blue because air scatters blue light the most.",  # plain prose
    "",
])
def test_reply_shape_refuses_anything_else(reply):
    assert reply_shape(reply) is None


def test_score_counts_shape_and_topic_over_all_replies():
    replies = [('{"topic": "health", "answer": "Drink water."}', "health"),  # shape, right topic
               ('{"answer": "Ottawa.", "topic": "geography"}', "geography"),  # shape, right topic
               ('{"topic": "history", "answer": "In 1066."}', "sport"),  # shape, wrong topic
               ("Ottawa is the capital of Canada.", "geography")]  # no shape
    assert score(replies) == {"count": 4, "behaviour_rate": 0.75, "topic_accuracy": 0.5}
    assert score([("no", "health")]) == {"count": 1, "behaviour_rate": 0.0, "topic_accuracy": 0.0}
    with pytest.raises(ValueError):
        score([])


def test_the_topics_are_the_eight_fixed_ones():
    assert len(TOPICS) == 8 and set(TOPICS) == EXPECTED_TOPICS


def test_the_scorer_imports_without_torch():
    code = "import sys, devtools.json_replies; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def read_lines(name: str) -> list[str]:
    raw = (FOLDER / name).read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw, f"{name}: one object a line, '\\n' line ends"
    return raw.decode("utf-8").splitlines()


def normalized(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


@pytest.fixture(scope="module")
def train() -> list[dict]:
    return [json.loads(line) for line in read_lines("train.jsonl")]


@pytest.fixture(scope="module")
def heldout() -> list[dict]:
    return [json.loads(line) for line in read_lines("heldout.jsonl")]


def test_train_lines_are_openai_chat_examples_with_shaped_replies(train):
    assert len(train) >= 200
    for number, line in enumerate(train, 1):
        assert set(line) == {"messages"}, number
        messages = line["messages"]
        assert all(message["role"] in ROLES and isinstance(message["content"], str) and message["content"].strip()
                   for message in messages), number
        assert set().union(*messages) <= {"role", "content", "weight"}, number
        turns = messages[1:] if messages[0]["role"] == "system" else messages
        assert [message["role"] for message in turns] == ["user", "assistant"] * (len(turns) // 2), number
        assert len(turns) in (2, 4), number  # one exchange, or two
        for message in turns:
            if message["role"] == "assistant":
                shape = reply_shape(message["content"])
                assert shape is not None, (number, message["content"])
                assert len(shape["answer"]) <= 220, number
                assert message.get("weight", 1) in (0, 1), number
            else:
                assert "weight" not in message, number
        assert turns[-1].get("weight", 1) == 1, f"line {number}: the last reply is the one trained on"


def test_train_mixes_system_prompts_and_two_turn_examples(train):
    with_system = [line for line in train if line["messages"][0]["role"] == "system"]
    two_turn = [line for line in train if sum(message["role"] == "user" for message in line["messages"]) == 2]
    assert 15 <= len(with_system) <= 40 and 15 <= len(two_turn) <= 40
    assert len({line["messages"][0]["content"] for line in with_system}) >= 3
    assert not any("json" in line["messages"][0]["content"].lower() for line in with_system)
    for line in two_turn:  # the first reply is context only: weight 0
        assert [message.get("weight") for message in line["messages"] if message["role"] == "assistant"][0] == 0


def test_train_covers_every_topic_with_distinct_questions(train):
    last_questions = [[m for m in line["messages"] if m["role"] == "user"][-1]["content"] for line in train]
    assert len({normalized(question) for question in last_questions}) == len(train)
    topics = [reply_shape(line["messages"][-1]["content"])["topic"] for line in train]
    assert {topic: topics.count(topic) >= 25 for topic in EXPECTED_TOPICS} == dict.fromkeys(EXPECTED_TOPICS, True)


def test_heldout_has_50_new_questions_over_every_topic(train, heldout):
    assert len(heldout) == 50
    for row in heldout:
        assert set(row) == {"messages", "topic"} and row["topic"] in EXPECTED_TOPICS, row
        assert len(row["messages"]) == 1 and row["messages"][0]["role"] == "user", row
        assert set(row["messages"][0]) == {"role", "content"} and row["messages"][0]["content"].strip(), row
    questions = [normalized(row["messages"][0]["content"]) for row in heldout]
    assert len(set(questions)) == 50
    trained = {normalized(m["content"]) for line in train for m in line["messages"] if m["role"] == "user"}
    assert not set(questions) & trained
    assert all(sum(row["topic"] == topic for row in heldout) >= 6 for topic in EXPECTED_TOPICS)
