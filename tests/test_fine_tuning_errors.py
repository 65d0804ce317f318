"""Bad input to OpenAI's files and fine-tuning API: each a clear 4xx in OpenAI's error body naming the problem and the
param, and nothing already stored lost."""
import json

import httpx
import openai
import pytest

from tests.fine_tuning_service import (chat_lines, client, gateway, llm, models_dir, prompt_lines,  # noqa: F401
                                       trainer, wait_for_end)

ONE_EPOCH = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}}


@pytest.fixture(scope="module")
def stored(client):
    """A good file, and a finished job's metrics file (purpose fine-tune-results)."""
    good = client.files.create(file=("good.jsonl", chat_lines(12)), purpose="fine-tune")
    job = wait_for_end(client, client.fine_tuning.jobs.create(model="base", training_file=good.id,
                                                              method=ONE_EPOCH).id)
    assert job.status == "succeeded"
    return good, job.result_files[0]


def refused(call, status: type, param: str | None, *words: str):
    with pytest.raises(status) as raised:
        call()
    error = raised.value
    assert error.param == param, error.body
    assert all(word in error.message for word in words), error.message
    return error


def create(client, **fields):
    return lambda: client.fine_tuning.jobs.create(**{"model": "base", **fields})


def test_unknown_ids_are_404_naming_them(client, stored):
    good, _ = stored
    refused(create(client, training_file="file-nope"), openai.NotFoundError, "training_file", "file-nope")
    refused(create(client, training_file=good.id, validation_file="file-gone"), openai.NotFoundError,
            "validation_file", "file-gone")
    error = refused(create(client, training_file=good.id, model="gpt-4o"), openai.NotFoundError, "model", "gpt-4o")
    assert error.code == "model_not_found"
    for call in (lambda: client.fine_tuning.jobs.retrieve("ftjob-nope"),
                 lambda: client.fine_tuning.jobs.cancel("ftjob-nope"),
                 lambda: client.fine_tuning.jobs.list_events("ftjob-nope")):
        refused(call, openai.NotFoundError, "fine_tuning_job_id", "ftjob-nope")
    for call in (lambda: client.files.retrieve("file-nope"), lambda: client.files.delete("file-nope"),
                 lambda: client.files.content("file-nope")):
        refused(call, openai.NotFoundError, "file_id", "file-nope")


def test_a_job_on_a_file_of_another_purpose_is_refused(client, stored):
    _, results = stored
    refused(create(client, training_file=results), openai.BadRequestError, "training_file",
            "purpose fine-tune-results", "purpose fine-tune")


@pytest.mark.parametrize("fields, param, words", [
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
     "method.supervised.hyperparameters.n_epochs", ["between 1 and 50", "got 0"]),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 2.5}}}},
     "method.supervised.hyperparameters.batch_size", ["whole number"]),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 0}}}},
     "method.supervised.hyperparameters.learning_rate_multiplier", ["greater than 0"]),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "many"}}}},
     "method.supervised.hyperparameters.n_epochs", ["a number or \"auto\""]),
    ({"hyperparameters": {"n_epochs": 51}}, "hyperparameters.n_epochs", ["between 1 and 50"]),
    ({"hyperparameters": {"n_epochs": 2}, "method": ONE_EPOCH}, "hyperparameters", ["not both"]),
    ({"method": {"type": "distillation"}}, "method.type", ["must be one of supervised, dpo, reinforcement"]),
    ({"method": {"type": "supervised", "dpo": {}}}, "method.dpo", ["method.type is supervised"]),
    ({"method": {"type": "dpo"}}, "training_file", ["not valid data for a dpo job", "line 1: input and preferred_output "
                                                    "and non_preferred_output are missing (the line is a chat example"]),
    ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0}}}}, "method.dpo.hyperparameters.beta",
     ["greater than 0 and at most 2", "got 0"]),
    ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 2.5}}}}, "method.dpo.hyperparameters.beta",
     ["at most 2"]),
    ({"method": {"type": "dpo"}, "hyperparameters": {"n_epochs": 2}}, "hyperparameters",
     ["method.dpo.hyperparameters"]),
    ({"method": {"type": "reinforcement"}}, "method.reinforcement.grader", ["required"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {"type": "python", "name": "p",
                                                                       "source": "def grade(s, i): return 1"}}}},
     "method.reinforcement.grader.type", ["python", "no request runs code"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {
        "type": "score_model", "name": "judge", "model": "gpt-4o", "input": [{"role": "user", "content": "x"}]}}}},
     "method.reinforcement.grader.type", ["score_model", "no grader model"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {"type": "regex_check"}}}},
     "method.reinforcement.grader.type", ["regex_check"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {
        "type": "string_check", "name": "s", "input": "{{sample.output_text}}", "reference": "x",
        "operation": "startswith"}}}}, "method.reinforcement.grader.operation", ["startswith"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {
        "type": "multi", "name": "m", "calculate_output": "a - b", "graders": {
            "a": {"type": "string_check", "name": "a", "input": "{{sample.output_text}}", "reference": "x",
                  "operation": "eq"},
            "b": {"type": "string_check", "name": "b", "input": "{{sample.output_text}}", "reference": "y",
                  "operation": "eq"}}}}}}, "method.reinforcement.grader.calculate_output", ["sum to 0"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {
        "type": "string_check", "name": "s", "input": "{{sample.output_text}}", "reference": "x", "operation": "eq"},
        "hyperparameters": {"compute_multiplier": 8}}}}, "method.reinforcement.hyperparameters.compute_multiplier",
     ["between 0.25 and 4"]),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": {
        "type": "string_check", "name": "s", "input": "{{sample.output_text}}", "reference": "x", "operation": "eq"},
        "hyperparameters": {"eval_samples": 33}}}}, "method.reinforcement.hyperparameters.eval_samples",
     ["between 1 and 32"]),
    ({"suffix": "Has Spaces"}, "suffix", ["lower-case"]),
    ({"seed": -1}, "seed", ["between 0 and"]),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", ["at most 16"]),
])
def test_bad_fields_are_400_naming_the_param(client, stored, fields, param, words):
    good, _ = stored
    refused(create(client, training_file=good.id, **fields), openai.BadRequestError, param, *words)


def test_a_reinforcement_file_must_hold_each_field_its_grader_reads(client):
    lines = prompt_lines(11) + json.dumps({"messages": [{"role": "user", "content": "No answer here?"}]}).encode()
    prompts = client.files.create(file=("prompts.jsonl", lines), purpose="fine-tune")
    grader = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
              "reference": "{{item.answer}}", "operation": "eq"}
    refused(create(client, training_file=prompts.id, method={"type": "reinforcement", "reinforcement": {
        "grader": grader}}), openai.BadRequestError, "training_file", "line 12:", "{{item.answer}}")
    good = client.files.create(file=("good.jsonl", prompt_lines(12)), purpose="fine-tune")
    refused(create(client, training_file=good.id, method={"type": "reinforcement", "reinforcement": {
        "grader": grader}}, validation_file=prompts.id), openai.BadRequestError, "validation_file", "line 12:",
        "{{item.answer}}")


def test_a_file_a_job_still_needs_cannot_be_deleted(client):
    busy = client.files.create(file=("busy.jsonl", chat_lines(200)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="base", training_file=busy.id,
                                         method={"type": "supervised", "supervised": {"hyperparameters": {
                                             "n_epochs": 50, "batch_size": 1}}})
    error = refused(lambda: client.files.delete(busy.id), openai.ConflictError, "file_id", job.id, "cancel it")
    assert error.status_code == 409
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
    assert client.files.delete(busy.id).deleted


def upload(gateway, files=None, data=None, content=None, headers=None) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/files", files=files, data=data, content=content, headers=headers,
                      timeout=60)


def test_bad_uploads_are_refused_and_stored_files_stay(client, gateway, stored):
    before = {f.id for f in client.files.list().data}
    bad_example = chat_lines(11) + json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode() + b"\n"
    form = {"purpose": "fine-tune"}
    cases = [
        (upload(gateway, {"file": ("a.jsonl", chat_lines(12))}, {"purpose": "assistants"}), 400, "purpose",
         "purpose must be 'fine-tune'"),
        (upload(gateway, {"file": ("a.jsonl", bad_example)}, form), 400, "file",
         "line 12: messages[0].role must be one of system, user, assistant"),
        (upload(gateway, {"file": ("a.jsonl", b"")}, form), 400, "file", "the file is empty"),
        (upload(gateway, {"file": ("a.jsonl", b"\xff\xfe" * 5)}, form), 400, "file", "not UTF-8"),
        (upload(gateway, {"file": ("a.jsonl", chat_lines(3))}, form), 400, "file", "at least 10"),
        (upload(gateway, {"file": ("a.jsonl", chat_lines(12))}, {**form, "expires_after": "3600"}), 400, "file",
         "unknown form field 'expires_after'"),
        (upload(gateway, content=b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n--b--\r\n',
                headers={"content-type": "multipart/form-data; boundary=b"}), 400, "file", "no file field"),
        (upload(gateway, data=form), 400, "file", "must be multipart/form-data"),
        (upload(gateway, content=b'{"purpose": "fine-tune"}', headers={"content-type": "application/json"}), 400,
         "file", "multipart/form-data"),
        (upload(gateway, content=b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n--b\r\n'
                b'Content-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n' + chat_lines(12),
                headers={"content-type": "multipart/form-data; boundary=b"}), 400, "file", "cut short"),
        (upload(gateway, {"file": ("big.jsonl", chat_lines(3000))}, form), 413, None, ""),
    ]
    for response, status, param, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["param"] == param and words in error["message"], error
    assert {f.id for f in client.files.list().data} == before


def test_listing_arguments_out_of_range_are_400(client, stored):
    good, _ = stored
    refused(lambda: client.files.list(limit=0), openai.BadRequestError, "limit", "between 1 and 10000")
    refused(lambda: client.files.list(order="sideways"), openai.BadRequestError, "order", "asc or desc")
    refused(lambda: client.fine_tuning.jobs.list(limit=101), openai.BadRequestError, "limit", "between 1 and 100")
    job = client.fine_tuning.jobs.list(limit=1).data[0]
    refused(lambda: client.fine_tuning.jobs.list_events(job.id, after="ftevent-x"), openai.BadRequestError, "after",
            "event id")
