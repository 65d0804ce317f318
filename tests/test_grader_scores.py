"""The graders' scores, computed for real and checked against values worked out by hand; a multi's score is its
weighted sum; the trl adapter's functions, called the way GRPOTrainer calls them (string and conversational
completions, the training line as a JSON `item` column), give the graders' scores under the graders' names; reading a
grader loads none of the heavy packages."""
import json
import math
import pickle
import subprocess
import sys

import pytest

from services.common.prompts import PREFIX, SUFFIX
from services.trainer.training.graders import ITEM_COLUMN, encode_item, read_grader, reward_functions

OUT = "{{sample.output_text}}"


def similarity(metric: str, given: str, reference: str) -> float:
    grader = read_grader({"type": "text_similarity", "name": metric, "input": OUT, "reference": "{{item.ref}}",
                          "evaluation_metric": metric})
    return grader.score(given, {"ref": reference})


CAT, MAT = "the cat sat", "the cat sat on the mat"


@pytest.mark.parametrize("metric, given, reference, expected", [
    ("bleu", MAT, MAT, 1.0),
    ("bleu", "the cat", "the cat", 1.0),  # shorter than 4 words: effective order, else no 4-grams and 0
    # 3 words of 6, every n-gram up to 3 matched: only the brevity penalty, exp(1 - 6/3)
    ("bleu", CAT, MAT, math.exp(-1)),
    ("bleu", "dogs run fast", MAT, 0.0),
    ("rouge_1", CAT, MAT, 2 / 3),  # precision 3/3, recall 3/6
    ("rouge_2", CAT, MAT, 4 / 7),  # bigrams: precision 2/2, recall 2/5
    ("rouge_5", CAT, MAT, 0.0),  # three words hold no 5-gram
    ("rouge_l", CAT, MAT, 2 / 3),  # longest common subsequence 3: precision 3/3, recall 3/6
    ("rouge_l", "the mat sat", MAT, 4 / 9),  # LCS "the sat" or "the mat": precision 2/3, recall 2/6
    ("rouge_l", "The CAT sat!", CAT, 1.0),  # rouge-score lower-cases and drops punctuation
    ("fuzzy_match", "Paris", "Paris", 1.0),
    ("fuzzy_match", "PARIS!", "paris", 1.0),  # lower-cased, punctuation stripped before matching
    ("fuzzy_match", "kitten", "sitting", 8 / 13),  # common subsequence "ittn": 1 - (6 + 7 - 2*4) / (6 + 7)
    ("fuzzy_match", "Paris", "The capital of France is Paris.", 0.9),  # WRatio's partial match, scaled by 0.9
    ("squad_f1", "The Eiffel Tower, in Paris", "Paris", 0.4),  # 1 of 4 normalised words: 2 * 1/4 * 1 / (5/4)
    ("squad_f1", "the Paris.", "Paris", 1.0),
    ("squad_f1", "Lyon", "Paris", 0.0),
    ("squad_f1", "Lyon", '["Paris", "Lyon"]', 1.0),  # a JSON list of gold answers: the closest counts
    ("squad_f1", f"{PREFIX} Paris. {SUFFIX} Rome", "Paris", 1.0),  # the answer within the format, to its end
    ("ends_with", f"Paris. {SUFFIX}", SUFFIX, 1.0),
    ("ends_with", f"Paris. {SUFFIX}  \n", SUFFIX, 1.0),
    ("ends_with", f"Paris. {SUFFIX} Also Rome.", SUFFIX, 1 - 10 / 40),  # 10 characters after it
    ("ends_with", f"Paris. {SUFFIX}" + " x" * 30, SUFFIX, 0.0),
    ("ends_with", "Paris.", SUFFIX, 0.0),
])
def test_similarity_metrics_against_hand_worked_values(metric, given, reference, expected):
    assert similarity(metric, given, reference) == pytest.approx(expected, abs=1e-9)


SQUAD_LIKE = {
    "type": "multi", "name": "squad format and answer",
    "graders": {
        "prefix": {"type": "string_check", "name": "prefix", "input": OUT, "reference": PREFIX, "operation": "like"},
        "suffix": {"type": "string_check", "name": "suffix", "input": OUT, "reference": SUFFIX, "operation": "like"},
        "answer_f1": {"type": "text_similarity", "name": "answer", "input": OUT, "reference": "{{item.answer}}",
                      "evaluation_metric": "squad_f1"},
    },
    "calculate_output": "0.25 * prefix + 0.25 * suffix + 0.5 * answer_f1",
}
FULL = f"{PREFIX} Paris. {SUFFIX}"


def test_a_multi_scores_the_weighted_sum_of_its_graders_unnormalised():
    grader = read_grader(SQUAD_LIKE)
    assert grader.weights == {"prefix": 0.25, "suffix": 0.25, "answer_f1": 0.5}
    answer_f1 = 1.0  # squad_f1 scores the answer within the format
    assert grader.sub_scores(FULL, {"answer": "Paris"}) == pytest.approx(
        {"prefix": 1.0, "suffix": 1.0, "answer_f1": answer_f1})
    assert grader.score(FULL, {"answer": "Paris"}) == pytest.approx(0.5 + 0.5 * answer_f1)
    assert grader.score("Paris", {"answer": "Paris"}) == 0.5
    doubled = read_grader({**SQUAD_LIKE, "calculate_output": "2 * prefix + 2 * suffix"})
    assert doubled.score(FULL, {"answer": "Lyon"}) == 4.0  # not divided by the weights' total


def call_like_trl(function, completions, items, prompts):
    """GRPOTrainer._calculate_rewards' call: keyword arguments, every dataset column but prompt as a list, and its own
    extras (trainer_state, log_extra, log_metric)."""
    return function(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(completions),
                    **{ITEM_COLUMN: items, "answers": [None] * len(completions)},
                    trainer_state=None, log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None)


def test_the_trl_adapter_scores_string_and_conversational_completions():
    functions, weights = reward_functions(read_grader(SQUAD_LIKE))
    assert [f.__name__ for f in functions] == ["prefix", "suffix", "answer_f1"]
    assert weights == [0.25, 0.25, 0.5]
    texts = [FULL, "Paris", f"{PREFIX} Lyon."]
    items = [encode_item({"answer": "Paris"}), encode_item({"answer": "Paris"}), json.dumps({"answer": "Lyon"})]
    as_strings = [call_like_trl(f, texts, items, ["Q?"] * 3) for f in functions]
    conversational = [[{"role": "assistant", "content": text}] for text in texts]
    as_messages = [call_like_trl(f, conversational, items, [[{"role": "user", "content": "Q?"}]] * 3)
                   for f in functions]
    assert as_messages == as_strings
    assert as_strings[0] == [1.0, 0.0, 1.0]
    assert as_strings[1] == [1.0, 0.0, 0.0]
    assert as_strings[2] == pytest.approx([1.0, 1.0, 1.0])  # the answers within the format: "Paris.", "Paris", "Lyon."
    grader = read_grader(SQUAD_LIKE)
    for row, text in enumerate(texts):  # trl's weighted sum of the rewards is the multi's score
        answer = json.loads(items[row])
        assert sum(w * scores[row] for w, scores in zip(weights, as_strings)) == pytest.approx(
            grader.score(text, answer))


def test_a_single_grader_is_one_function_of_weight_one_named_by_its_name():
    grader = read_grader({"type": "string_check", "name": "exact", "input": OUT, "reference": "{{item.answer}}",
                          "operation": "eq"})
    (function,), weights = reward_functions(grader)
    assert (function.__name__, weights) == ("exact", [1.0])
    completions = ["4", [{"role": "assistant", "content": [{"type": "text", "text": "4"}]}],
                   [{"role": "assistant", "content": None, "tool_calls": []}, {"role": "tool", "content": "4"},
                    {"role": "assistant", "content": "5"}]]  # the answer after the tools is the last assistant's
    items = [encode_item({"answer": 4})] * 2 + [encode_item({"answer": 5})]
    assert call_like_trl(function, completions, items, ["Q"] * 3) == [1.0, 1.0, 1.0]
    assert call_like_trl(function, completions, [encode_item({"answer": 4})] * 3, ["Q"] * 3) == [1.0, 1.0, 0.0]


def test_the_adapter_pickles_and_names_its_functions_the_way_trl_reads_them():
    from trl.trainer.utils import get_callable_name

    functions, _ = reward_functions(read_grader(SQUAD_LIKE))
    copies = pickle.loads(pickle.dumps(functions))
    assert [get_callable_name(f) for f in copies] == ["prefix", "suffix", "answer_f1"]
    items = [encode_item({"answer": "Paris"})]
    assert [call_like_trl(f, [FULL], items, ["Q"]) for f in copies] == [
        call_like_trl(f, [FULL], items, ["Q"]) for f in functions]


def test_the_adapter_refuses_a_batch_without_the_item_column():
    (function, *_), _ = reward_functions(read_grader(SQUAD_LIKE))
    with pytest.raises(KeyError, match="'item' column"):
        function(prompts=["Q"], completions=["A"], completion_ids=[[1]], answers=[None])


def test_reading_a_grader_loads_neither_torch_nor_the_metric_packages():
    script = ("import sys, json; from services.trainer.training.graders import read_grader, item_fields; "
              f"item_fields(read_grader(json.loads({json.dumps(json.dumps(SQUAD_LIKE))}))); "
              "print(sorted(m for m in ('torch', 'trl', 'nltk', 'sacrebleu', 'rouge_score', 'rapidfuzz', 'grpc') "
              "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
