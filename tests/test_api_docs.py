"""docs/api.md's method tables are what gateway/api_docs.py generates from the protos: every REST binding, each
request field with the default and range its comment states (read one way, gateway/proto_comments.py)."""
import difflib

import pytest

from gateway import api_docs
from gateway.http_rules import http_bindings, load_descriptor_set
from gateway.openapi import openapi_document
from gateway.proto_comments import stated_bounds, stated_default, stated_default_value, stated_range
from textgen.paths import API_REFERENCE, DESCRIPTOR_SET


def test_the_committed_api_reference_is_the_generated_one():
    committed = API_REFERENCE.read_text()
    generated = api_docs.with_generated_section(committed, api_docs.generated_section(
        load_descriptor_set(DESCRIPTOR_SET)))
    if committed != generated:
        diff = difflib.unified_diff(committed.splitlines(), generated.splitlines(), "committed", "generated",
                                    lineterm="")
        pytest.fail(f"docs/api.md is stale: run `{api_docs.WRITE_COMMAND}` (or make protos)\n" + "\n".join(diff))


def test_the_reference_lists_every_rest_binding_and_each_request_field_with_its_default_and_range():
    files = load_descriptor_set(DESCRIPTOR_SET)
    section = api_docs.generated_section(files)
    for binding in http_bindings(files):
        assert f"| {binding.http_method} | `{binding.path}` | `{binding.grpc_path}` |" in section
    assert "| `start_word` | string | required | 1..100 characters |" in section
    assert "| `temperature` | double | `0.3` | > 0 and <= 2 |" in section
    assert "| `num_generations` | int32 | `8` | 2..32 |" in section
    assert "| `job_id` | string | required (in the path) |" in section


def test_a_document_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="lacks the markers"):
        api_docs.with_generated_section("# hand-written only\n", "## Methods")


@pytest.mark.parametrize("comment, default, allowed", [
    ("QA mode: 1..512, default 80.", "80", "1..512"),
    ("> 0 and <= 0.01, default 2e-4.", "2e-4", "> 0 and <= 0.01"),
    ("Required: the first word of the text (1..100 characters).", None, "1..100 characters"),
    ('"" (decided by use_rl_model), "base", "sft" or "rl"; default "".', '""', None),
    ("true: the rl adapter; false: the sft adapter. Default true.", "true", None),
    ("Makes sampling reproducible.", None, None),
])
def test_the_stated_default_and_range_are_read_as_written(comment, default, allowed):
    assert stated_default(comment) == default and stated_range(comment) == allowed


@pytest.mark.parametrize("comment, default, bounds", [
    ("QA mode: 1..512, default 80.", 80, {"minimum": 1, "maximum": 512}),
    ("> 0 and <= 0.01, default 2e-4.", 0.0002, {"exclusiveMinimum": 0, "maximum": 0.01}),
    ("Sampling temperature: > 0 and <= 5, default 1.0.", 1.0, {"exclusiveMinimum": 0, "maximum": 5}),
    ("Required: the first word of the text (1..100 characters).", None, {"minLength": 1, "maxLength": 100}),
    ('"" (decided by use_rl_model), "base", "sft" or "rl"; default "".', "", None),
    ("true: the rl adapter; false: the sft adapter. Default true.", True, None),
])
def test_the_stated_default_and_range_are_read_as_json_values(comment, default, bounds):
    assert stated_default_value(comment) == default and stated_bounds(comment) == bounds


def test_openapi_carries_each_request_fields_stated_default_and_range_for_forms():
    files = load_descriptor_set(DESCRIPTOR_SET)
    schemas = openapi_document(http_bindings(files), files)["components"]["schemas"]
    sft = schemas["textgen.v1.TrainSftRequest"]["properties"]
    assert (sft["max_examples"]["x-default"], sft["max_examples"]["x-range"]) == (200, {"minimum": 1,
                                                                                        "maximum": 100000})
    assert sft["learning_rate"]["x-range"] == {"exclusiveMinimum": 0, "maximum": 0.01}
    assert schemas["textgen.v1.TrainRlRequest"]["properties"]["use_dataset_prompts"]["x-default"] is False
    # Not JSON Schema's own keywords: the REST fuzzer would send them (gateway/openapi.py says why).
    assert not any("default" in p or "minimum" in p for s in schemas.values() for p in s.get("properties", {}).values())
