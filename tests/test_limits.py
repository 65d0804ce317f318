"""Request limits, declared alike by every service (services.common.limits): the protos' comments state each
documented range and default exactly as the service enforces it, and every range error is worded the same way."""
import dataclasses
import re

import pytest
from textgen.v1 import rnn_pb2

from gateway.http_rules import load_descriptor_set
from gateway.proto_comments import collect_comments, stated_default_value, stated_range
from services.baseline.server import BigramParams
from services.common.limits import Bound, bounds, from_request, out_of_range
from services.llm.openai.planning import ChatParams, CompletionParams
from services.llm.native.planning import LlmParams
from services.rnn.server import RnnParams
from services.trainer.training.params import EvalParams, RlParams, SftParams
from textgen.paths import DESCRIPTOR_SET

REQUEST_LIMITS = [(BigramParams, "BigramGenerateRequest"), (RnnParams, "RnnGenerateRequest"),
                  (LlmParams, "LlmGenerateRequest"), (SftParams, "TrainSftRequest"), (RlParams, "TrainRlRequest"),
                  (ChatParams, "ChatCompletionRequest"), (CompletionParams, "CompletionRequest")]


def as_bound(stated: str) -> Bound:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", stated)]
    return Bound(*numbers, low_open=stated.startswith(">"))


@pytest.mark.parametrize("params_type, message", REQUEST_LIMITS, ids=[m for _, m in REQUEST_LIMITS])
def test_the_proto_comments_state_the_enforced_ranges_and_defaults(params_type, message):
    comments = collect_comments(load_descriptor_set(DESCRIPTOR_SET))
    for field in dataclasses.fields(params_type):
        comment = comments[f"textgen.v1.{message}.{field.name}"]
        assert stated_default_value(comment) == field.default, (field.name, comment)
        bound = bounds(params_type).get(field.name)
        if bound is not None:
            assert as_bound(stated_range(comment)) == bound, (field.name, comment)


def test_out_of_range_names_each_field_and_its_range():
    assert out_of_range(SftParams()) == [] and out_of_range(EvalParams()) == []
    assert out_of_range(SftParams(max_examples=0, learning_rate=0.0)) == [
        ("max_examples", "max_examples must be between 1 and 100000 (got 0)"),
        ("learning_rate", "learning_rate must be greater than 0 and at most 0.01 (got 0.0)")]
    assert out_of_range(EvalParams(max_new_tokens=4))[0][0] == "max_new_tokens"
    assert out_of_range(RnnParams(length=0, temperature=0.0)) == [
        ("length", "length must be between 1 and 1000 (got 0)"),
        ("temperature", "temperature must be greater than 0 and at most 5.0 (got 0.0)")]


def test_a_request_takes_what_it_sets_and_the_defaults_for_the_rest():
    assert from_request(RnnParams, rnn_pb2.RnnGenerateRequest(start_word="the")) == RnnParams()
    assert from_request(RnnParams, rnn_pb2.RnnGenerateRequest(start_word="the", temperature=0.5)) == \
        RnnParams(temperature=0.5)
