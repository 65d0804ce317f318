"""OpenAI's fine-tuning graders read and checked: each refusal names the offending field's dotted path and the
problem; templates render item fields (numbers and objects as JSON); string_check's operations follow OpenAI's
definitions; a multi's calculate_output is read as a weighted sum, and anything else in it is refused."""
import pytest

from services.trainer.training.graders import GraderProblem, item_fields, missing_field, read_grader
from services.trainer.training.graders.templates import MissingItemField

P = "method.reinforcement.grader"
OUT = "{{sample.output_text}}"


def check(operation="eq", input=OUT, reference="{{item.answer}}", **extra):
    return {"type": "string_check", "name": "check", "input": input, "reference": reference, "operation": operation,
            **extra}


def similar(metric="bleu", **extra):
    return {"type": "text_similarity", "name": "similar", "input": OUT, "reference": "{{item.answer}}",
            "evaluation_metric": metric, **extra}


def multi(calculate_output="0.5 * a + 0.5 * b", graders=None):
    return {"type": "multi", "name": "both", "calculate_output": calculate_output,
            "graders": graders if graders is not None else {"a": check("like"), "b": similar()}}


def refused(grader, **kwargs) -> GraderProblem:
    with pytest.raises(GraderProblem) as caught:
        read_grader(grader, **kwargs)
    return caught.value


@pytest.mark.parametrize("operation, given, reference, expected", [
    ("eq", "Paris", "Paris", 1.0), ("eq", "Paris", "paris", 0.0), ("eq", "Paris ", "Paris", 0.0),
    ("ne", "Paris", "paris", 1.0), ("ne", "Paris", "Paris", 0.0),
    ("like", "It is Paris.", "Paris", 1.0), ("like", "It is paris.", "Paris", 0.0), ("like", "Lyon", "Paris", 0.0),
    ("like", "a%c", "a%", 1.0), ("like", "abc", "a%", 0.0),  # contains, not SQL's pattern: % is a plain character
    ("ilike", "It is PARIS.", "paris", 1.0), ("ilike", "It is paris.", "Paris", 1.0), ("ilike", "Lyon", "paris", 0.0),
])
def test_string_check_operations_as_openai_defines_them(operation, given, reference, expected):
    assert read_grader(check(operation)).score(given, {"answer": reference}) == expected


def test_templates_render_item_fields_nested_paths_and_json_for_what_is_not_a_string():
    grader = read_grader(check("eq", input="{{ item.n }}|{{item.x}}|{{item.ok}}|{{item.none}}|{{item.tags}}",
                               reference="{{item.meta.source}}/{{item.tags.1}}/{{sample.output_text}}"))
    item = {"n": 3, "x": 2.5, "ok": True, "none": None, "tags": ["a", "b"], "meta": {"source": "wiki"}}
    assert grader.input.render("out", item) == '3|2.5|true|null|["a", "b"]'
    assert grader.reference.render("out", item) == "wiki/b/out"
    assert item_fields(grader) == {"n", "x", "ok", "none", "tags", "meta.source", "tags.1"}
    assert missing_field(grader, item) is None
    assert missing_field(grader, {**item, "meta": {}}) == "meta.source"
    assert missing_field(grader, {"x": 1}) == "n"  # the first in the grader's order
    with pytest.raises(MissingItemField, match="'n'"):
        grader.score("out", {})


def test_literal_text_and_lone_braces_pass_through_templates():
    grader = read_grader(check("eq", input="Answer: {{sample.output_text}} {not a template}", reference="x"))
    assert grader.input.render("42", {}) == "Answer: 42 {not a template}"
    assert item_fields(grader) == set()


def test_multi_reads_weights_from_a_weighted_sum():
    assert read_grader(multi("0.5 * a + 0.5 * b")).weights == {"a": 0.5, "b": 0.5}
    assert read_grader(multi("(a + b) / 2")).weights == {"a": 0.5, "b": 0.5}
    assert read_grader(multi("2*a - 0")).weights == {"a": 2.0, "b": 0.0}  # b left out: weight 0
    assert read_grader(multi("-(a - 3 * b) / 2")).weights == {"a": -0.5, "b": 1.5}
    assert read_grader(multi("a + a + b * 0.5")).weights == {"a": 2.0, "b": 0.5}


@pytest.mark.parametrize("grader, param, words", [
    ([check()], P, ["must be an object", "an array"]),
    ({"name": "x"}, f"{P}.type", ["required", "string_check"]),
    ({**check(), "type": 7}, f"{P}.type", ["must be a string", "a number"]),
    ({"type": "python", "name": "p", "source": "def grade(s, i): return 1"}, f"{P}.type",
     ["'python'", "no request runs code"]),
    ({"type": "score_model", "name": "s"}, f"{P}.type", ["'score_model'", "no grader model is served"]),
    ({"type": "label_model", "name": "l"}, f"{P}.type", ["'label_model'", "no grader model is served"]),
    ({"type": "regex", "name": "r"}, f"{P}.type", ["'regex'", "string_check, text_similarity, multi"]),
    (check(passing=1), f"{P}.passing", ["unknown key 'passing'", "operation"]),
    ({k: v for k, v in check().items() if k != "operation"}, f"{P}.operation", ["required"]),
    (check(input=3), f"{P}.input", ["must be a string", "a number"]),
    ({**check(), "name": None}, f"{P}.name", ["must be a string", "null"]),
    (check("contains"), f"{P}.operation", ["'contains'", "eq, ne, like, ilike"]),
    (check(input="{{sample.output_json}}"), f"{P}.input", ["{{sample.output_json}}", "{{sample.output_text}}"]),
    (check(reference="{{ref.answer}}"), f"{P}.reference", ["{{ref.answer}}", "'ref' is not a template namespace"]),
    (check(reference="{{item}}"), f"{P}.reference", ["{{item}}", "names no field", "{{item.<field>}}"]),
    (check(reference="{{item.a..b}}"), f"{P}.reference", ["empty part"]),
    (similar("cosine"), f"{P}.evaluation_metric", ["'cosine'", "embedding model", "fuzzy_match", "squad_f1"]),
    (similar("gleu"), f"{P}.evaluation_metric", ["'gleu'", "not supported here", "bleu"]),
    (similar("meteor"), f"{P}.evaluation_metric", ["'meteor'", "WordNet"]),
    (similar("rouge_6"), f"{P}.evaluation_metric", ["'rouge_6'", "rouge_5, rouge_l"]),
    (similar(pass_threshold="high"), f"{P}.pass_threshold", ["must be a number", "a string"]),
    (similar(pass_threshold=True), f"{P}.pass_threshold", ["must be a number", "a boolean"]),
    (multi(graders={}), f"{P}.graders", ["at least one grader"]),
    (multi(graders=[check()]), f"{P}.graders", ["must be an object", "an array"]),
    (multi(graders={"my-check": check()}), f"{P}.graders.my-check", ["'my-check'", "letters, digits and _"]),
    (multi(graders={"a": check("contains"), "b": similar()}), f"{P}.graders.a.operation", ["'contains'"]),
    (multi(graders={"a": check(), "b": {"type": "python"}}), f"{P}.graders.b.type", ["no request runs code"]),
    (multi(graders={"a": check(), "b": multi()}), f"{P}.graders.b.type", ["multi inside a multi"]),
    (multi("min(a, b)"), f"{P}.calculate_output", ["'min(a, b)'", "calls a function", "weighted sum"]),
    (multi("a * b"), f"{P}.calculate_output", ["multiplies graders", "0.5 * a + 0.5 * b"]),
    (multi("a / b"), f"{P}.calculate_output", ["divides by a grader"]),
    (multi("a / 0"), f"{P}.calculate_output", ["divides by 0"]),
    (multi("a ** 2"), f"{P}.calculate_output", ["'a ** 2'", "not a number, a grader's name"]),
    (multi("a + c"), f"{P}.calculate_output", ["'c' is not one of its graders (a, b)"]),
    (multi("a - b"), f"{P}.calculate_output", ["weights that sum to 0", "a: 1, b: -1"]),
    (multi("a + 1"), f"{P}.calculate_output", ["adds a constant (1)"]),
    (multi("a +"), f"{P}.calculate_output", ["not a valid expression"]),
    (multi("__import__('os')"), f"{P}.calculate_output", ["calls a function"]),
    (multi("+" * 5000 + "a"), f"{P}.calculate_output", ["longer than 1000 characters"]),
])
def test_each_refusal_names_its_field_and_the_problem(grader, param, words):
    problem = refused(grader)
    assert isinstance(problem, ValueError)
    assert problem.param == param
    for word in words:
        assert word in str(problem), (word, str(problem))


def test_the_caller_chooses_the_path_s_prefix():
    problem = refused(multi(graders={"a": check("contains")}), param="grader")
    assert problem.param == "grader.graders.a.operation"
    assert str(problem).startswith("grader.graders.a.operation must be one of")


def test_pass_threshold_is_kept_and_does_not_change_the_score():
    with_threshold, without = read_grader(similar(pass_threshold=0.9)), read_grader(similar())
    assert (with_threshold.pass_threshold, without.pass_threshold) == (0.9, None)
    item = {"answer": "the cat sat on the mat"}
    assert with_threshold.score("the cat sat", item) == without.score("the cat sat", item) < 0.9
