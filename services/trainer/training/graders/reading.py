"""Reads (validates) a grader object of OpenAI's fine-tuning API into a grader that scores. Everything a grader
could fail on is found here, before a job starts: the types we cannot run, unknown or missing keys, wrong JSON
types, templates and metrics we do not support, and a multi's formula. Each refusal is a GraderProblem naming the
field's dotted path from `param`."""
import keyword
import math

from services.trainer.training.graders.formula import weights_of
from services.trainer.training.graders.multi import Multi
from services.trainer.training.graders.problems import DEFAULT_PARAM, GraderProblem, json_type
from services.trainer.training.graders.similarity import METRICS, REFUSED_METRICS, TextSimilarity
from services.trainer.training.graders.string_check import OPERATIONS, StringCheck
from services.trainer.training.graders.templates import lookup, parse_template

SUPPORTED_TYPES = ("string_check", "text_similarity", "multi")
REFUSED_TYPES = {
    "python": "no request runs code here",
    "score_model": "no grader model is served here",
    "label_model": "no grader model is served here",
}
KEYS = {  # type -> (required keys, optional keys)
    "string_check": (("type", "name", "input", "reference", "operation"), ()),
    "text_similarity": (("type", "name", "input", "reference", "evaluation_metric"), ("pass_threshold",)),
    "multi": (("type", "name", "graders", "calculate_output"), ()),
}


def _one_of(values) -> str:
    return ", ".join(values)


def _string(grader: dict, key: str, param: str) -> str:
    value = grader[key]
    if not isinstance(value, str):
        raise GraderProblem(f"{param}.{key}", f"{param}.{key} must be a string, not {json_type(value)}")
    return value


def _type_of(grader, param: str, nested: bool) -> str:
    if not isinstance(grader, dict):
        raise GraderProblem(param, f"{param} must be an object (a grader), not {json_type(grader)}")
    if "type" not in grader:
        raise GraderProblem(f"{param}.type", f"{param}.type is required: one of {_one_of(SUPPORTED_TYPES)}")
    kind = _string(grader, "type", param)
    if kind in REFUSED_TYPES:
        raise GraderProblem(f"{param}.type", f"{param}.type {kind!r} is not supported here: "
                                             f"{REFUSED_TYPES[kind]}. Use one of {_one_of(SUPPORTED_TYPES)}.")
    if kind not in KEYS:
        raise GraderProblem(f"{param}.type", f"{param}.type {kind!r} is not a grader type; "
                                             f"use one of {_one_of(SUPPORTED_TYPES)}")
    if kind == "multi" and nested:
        raise GraderProblem(f"{param}.type", f"{param} is a multi inside a multi, which is not supported here; "
                                             f"list its graders in the outer multi (string_check or text_similarity)")
    required, optional = KEYS[kind]
    for key in grader:
        if key not in required and key not in optional:
            raise GraderProblem(f"{param}.{key}", f"{param} has an unknown key {key!r}; a {kind} grader takes "
                                                  f"{_one_of(required + optional)}")
    for key in required:
        if key not in grader:
            raise GraderProblem(f"{param}.{key}", f"{param}.{key} is required for a {kind} grader")
    return kind


def _string_check(grader: dict, param: str) -> StringCheck:
    operation = _string(grader, "operation", param)
    if operation not in OPERATIONS:
        raise GraderProblem(f"{param}.operation", f"{param}.operation must be one of {_one_of(OPERATIONS)}, "
                                                  f"not {operation!r}")
    return StringCheck(name=_string(grader, "name", param),
                       input=parse_template(_string(grader, "input", param), f"{param}.input"),
                       reference=parse_template(_string(grader, "reference", param), f"{param}.reference"),
                       operation=operation)


def _text_similarity(grader: dict, param: str) -> TextSimilarity:
    metric = _string(grader, "evaluation_metric", param)
    where = f"{param}.evaluation_metric"
    if metric in REFUSED_METRICS:
        raise GraderProblem(where, f"{where} {metric!r} is not supported here: {REFUSED_METRICS[metric]}. "
                                   f"Use one of {_one_of(METRICS)} (squad_f1 and ends_with are ours, not OpenAI's).")
    if metric not in METRICS:
        raise GraderProblem(where, f"{where} {metric!r} is not a similarity metric; use one of {_one_of(METRICS)}")
    threshold = grader.get("pass_threshold")
    if "pass_threshold" in grader and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                       or not math.isfinite(threshold)):
        raise GraderProblem(f"{param}.pass_threshold",
                            f"{param}.pass_threshold must be a number, not {json_type(threshold)}")
    return TextSimilarity(name=_string(grader, "name", param),
                          input=parse_template(_string(grader, "input", param), f"{param}.input"),
                          reference=parse_template(_string(grader, "reference", param), f"{param}.reference"),
                          evaluation_metric=metric,
                          pass_threshold=None if threshold is None else float(threshold))


def _multi(grader: dict, param: str) -> Multi:
    name = _string(grader, "name", param)
    graders = grader["graders"]
    if not isinstance(graders, dict) or not graders:
        raise GraderProblem(f"{param}.graders", f"{param}.graders must be an object naming at least one grader "
                                                f"(name -> grader), not {json_type(graders)}")
    read = {}
    for key, sub in graders.items():
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise GraderProblem(f"{param}.graders.{key}",
                                f"{param}.graders has the name {key!r}, which calculate_output cannot refer to; "
                                f"name a grader with letters, digits and _ (not a digit first, not a Python keyword)")
        read[key] = _read(sub, f"{param}.graders.{key}", nested=True)
    formula = _string(grader, "calculate_output", param)
    weights = weights_of(formula, read, f"{param}.calculate_output")
    return Multi(name=name, graders=read, weights=weights, calculate_output=formula)


def _read(grader, param: str, nested: bool):
    kind = _type_of(grader, param, nested)
    if kind == "string_check":
        return _string_check(grader, param)
    if kind == "text_similarity":
        return _text_similarity(grader, param)
    return _multi(grader, param)


def read_grader(grader, param: str = DEFAULT_PARAM):
    """The grader object (parsed JSON) read into a StringCheck, TextSimilarity or Multi; GraderProblem if refused."""
    return _read(grader, param, nested=False)


def item_fields(grader) -> set[str]:
    """The training line's fields the grader's templates reference, as dotted paths (`answer`, `meta.source`)."""
    return set(grader.fields())


def missing_field(grader, item: dict) -> str | None:
    """The first referenced field (in the grader's order) that `item` lacks, or None when it has them all."""
    for field in grader.fields():
        if not lookup(item, field.split("."))[0]:
            return field
    return None
