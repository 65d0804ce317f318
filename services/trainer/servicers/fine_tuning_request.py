"""A request of POST /v1/fine_tuning/jobs read into the job's FineTuneParams, or refused with OpenAI's error naming
the param (`method.dpo.hyperparameters.beta`, `method.reinforcement.grader.operation`, `suffix`, ...). What needs
the stores (the files, the model it continues) is the servicer's; this checks the request's own fields."""
import re

from google.protobuf import json_format, struct_pb2

from services.common.errors import shown
from services.common.limits import bounds
from services.common.openai_errors import invalid
from services.trainer.training import graders
from services.trainer.training.fine_tune_params import (HYPERPARAMETERS, METHODS, REINFORCEMENT, SUPERVISED, WHOLE,
                                                         FineTuneParams)

SUFFIX = re.compile(r"[a-z0-9_-]{1,40}")
SUFFIX_RULE = "up to 40 lower-case letters, digits, '-' and '_'"
MAX_SEED = 2**31 - 1
MAX_METADATA, MAX_KEY, MAX_VALUE = 16, 64, 512


def _hyperparameters(request, method: str) -> tuple[object, str]:
    """The hyperparameters given, and where (the param path errors name)."""
    section = getattr(request.method, method)
    if request.HasField("hyperparameters"):
        if method != SUPERVISED:
            raise invalid(f"the top-level hyperparameters are a supervised job's; give a {method} job's in "
                          f"method.{method}.hyperparameters", "hyperparameters")
        if section.HasField("hyperparameters"):
            raise invalid("give the hyperparameters in method.supervised.hyperparameters or at the top level "
                          "(hyperparameters), not both", "hyperparameters")
        return request.hyperparameters, "hyperparameters"
    return section.hyperparameters, f"method.{method}.hyperparameters"


def _value(hyperparameters, name: str, where: str) -> float | None:
    """A hyperparameter's number; None for "auto" or unset."""
    param = f"{where}.{name}"
    if not hyperparameters.HasField(name):
        return None
    value: struct_pb2.Value = getattr(hyperparameters, name)
    kind = value.WhichOneof("kind")
    if kind in (None, "null_value") or (kind == "string_value" and value.string_value == "auto"):
        return None
    if kind != "number_value":
        raise invalid(f"{param} must be a number or \"auto\"", param)
    number = value.number_value
    if name in WHOLE:
        if number != number or number != int(number):  # NaN, or not whole
            raise invalid(f"{param} must be a whole number or \"auto\" (got {number})", param)
        number = int(number)
    bound = bounds(FineTuneParams)[name]
    if not bound.holds(number):
        raise invalid(f"{param} must be {bound} or \"auto\" (got {number})", param)
    return number


def _method(request) -> str:
    method = request.method.type or SUPERVISED
    if method not in METHODS:
        raise invalid(f"method.type must be one of {', '.join(METHODS)} (got {shown(method)})", "method.type")
    for other in METHODS:
        if other != method and request.method.HasField(other):
            raise invalid(f"method.{other} is given but method.type is {method}: give the section of the method "
                          "the job uses", f"method.{other}")
    return method


def _grader(request, method: str) -> dict | None:
    """The reinforcement grader as JSON, once read (OpenAI's errors name the grader's field at fault)."""
    given = request.method.reinforcement.HasField("grader")
    if method != REINFORCEMENT:
        return None
    if not given:
        raise invalid("method.reinforcement.grader is required: the grader that scores each sampled answer (e.g. "
                      "{\"type\": \"string_check\", ...}; docs/fine-tuning.md)", "method.reinforcement.grader")
    value = json_format.MessageToDict(request.method.reinforcement.grader)
    try:
        graders.read_grader(value, "method.reinforcement.grader")
    except graders.GraderProblem as problem:
        raise invalid(str(problem), problem.param) from None
    return value


def _metadata(request) -> None:
    if len(request.metadata) > MAX_METADATA:
        raise invalid(f"metadata holds at most {MAX_METADATA} pairs (got {len(request.metadata)})", "metadata")
    for key, value in request.metadata.items():
        if len(key) > MAX_KEY or len(value) > MAX_VALUE:
            raise invalid(f"metadata keys take at most {MAX_KEY} characters and values {MAX_VALUE} (key "
                          f"{shown(key)})", "metadata")


def model_name(suffix: str, job_id: str) -> str:
    """fine_tuned_model: OpenAI's ft:<base>:<org>:<suffix>:<id> in the characters an adapter's name takes."""
    digits = job_id.rsplit("-", 1)[-1]
    return f"ft-{suffix}-{digits}" if suffix else f"ft-{digits}"


def read_request(request, job_id: str) -> FineTuneParams:
    """The job's params (files and model not yet looked up; from_adapter unset). Raises OpenAiError."""
    method = _method(request)
    if not request.model:
        raise invalid("model is required: the base model (GET /v1/models lists it, or \"base\") or a fine-tuned "
                      "model of yours", "model")
    if not request.training_file:
        raise invalid("training_file is required: the id of a file uploaded with purpose fine-tune "
                      "(POST /v1/files)", "training_file")
    if request.suffix and not SUFFIX.fullmatch(request.suffix):
        raise invalid(f"suffix must be {SUFFIX_RULE} (got {shown(request.suffix)})", "suffix")
    if request.HasField("seed") and not 0 <= request.seed <= MAX_SEED:
        raise invalid(f"seed must be between 0 and {MAX_SEED} (got {request.seed})", "seed")
    _metadata(request)
    hyperparameters, where = _hyperparameters(request, method)
    chosen = {name: _value(hyperparameters, name, where) for name in HYPERPARAMETERS[method]}
    if method == REINFORCEMENT:
        chosen["skip_uniform_groups"] = hyperparameters.skip_uniform_groups
    seed = request.seed if request.HasField("seed") else int(job_id.rsplit("-", 1)[-1][:7], 16)
    return FineTuneParams(model=request.model, training_file=request.training_file,
                          validation_file=request.validation_file, suffix=request.suffix, seed=seed,
                          adapter=model_name(request.suffix, job_id), metadata=dict(request.metadata),
                          method=method, grader=_grader(request, method), **chosen)
