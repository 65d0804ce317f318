"""OpenAI's chat fine-tuning format, checked as OpenAI reports it: each problem names its line and key, at most 10
listed with a count of the rest; an empty file, bytes that are not UTF-8, a line that is not JSON and fewer than 10
examples are refused; a valid file reads back as messages with their weights."""
import json

from services.trainer.training.chat_format import Message, read_examples
from services.trainer.training.file_formats import check_file

GOOD = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello.", "weight": 0}, {"role": "user", "content": "Bye"},
                     {"role": "assistant", "content": "Goodbye."}]}


def write(tmp_path, lines: list) -> object:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n"
                              for line in lines))
    return path


def test_a_valid_file_counts_its_examples_and_reads_back_with_weights(tmp_path):
    path = write(tmp_path, [GOOD] * 12)
    checked = check_file(path)
    assert (checked.examples, checked.problems) == (12, [])
    first = read_examples(path)[0]
    assert first == [Message("system", "Be brief.", False), Message("user", "Hi", False),
                     Message("assistant", "Hello.", False), Message("user", "Bye", False),
                     Message("assistant", "Goodbye.", True)]


def test_each_problem_names_its_line_and_key(tmp_path):
    bad_role = {"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}
    bad_content = {"messages": [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "b"}]}
    bad_weight = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 2}]}
    user_weight = {"messages": [{"role": "user", "content": "a", "weight": 1}, {"role": "assistant", "content": "b"}]}
    no_assistant = {"messages": [{"role": "user", "content": "a"}]}
    nothing_trained = {"messages": [{"role": "user", "content": "a"},
                                    {"role": "assistant", "content": "b", "weight": 0}]}
    extra_key = {"messages": GOOD["messages"], "prompt": "x"}
    path = write(tmp_path, [GOOD] * 6 + [bad_role, bad_content, bad_weight, user_weight, no_assistant,
                                         nothing_trained, extra_key, b"{not json", b"\xff\xfe{}", [1, 2]])
    checked = check_file(path)
    assert checked.examples == 6
    assert checked.problems == [
        "line 7: messages[1].role must be one of system, user, assistant",
        "line 8: messages[0].content must be a string",
        "line 9: messages[1].weight must be 0 or 1",
        "line 10: messages[0].weight is allowed on assistant messages only",
        "line 11: messages has no assistant message to learn from",
        "line 12: every assistant message has weight 0: nothing to learn from",
        "line 13: has an unknown key 'prompt' (a chat example holds messages)",
        "line 14: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        "line 15: not UTF-8 (byte 0xff at byte 1 of the line)",
        "line 16: must be a JSON object with a messages list",
    ]
    assert checked.more_problems == 0


def test_at_most_ten_problems_are_listed_with_a_count_of_the_rest(tmp_path):
    checked = check_file(write(tmp_path, [b"nope"] * 14))
    assert len(checked.problems) == 10 and checked.more_problems == 4
    assert checked.summary().endswith("(and 4 more)")


def test_an_empty_file_and_too_few_examples_are_refused(tmp_path):
    assert check_file(write(tmp_path, [])).problems == ["the file is empty: it needs one chat example a line"]
    assert check_file(write(tmp_path, [GOOD] * 9)).problems == [
        "the file holds 9 examples; fine-tuning needs at least 10"]
    blank_lines = tmp_path / "blank.jsonl"
    blank_lines.write_text("\n".join([json.dumps(GOOD)] * 10) + "\n\n\n")
    assert check_file(blank_lines).examples == 10  # blank lines (a trailing newline too) are not examples
