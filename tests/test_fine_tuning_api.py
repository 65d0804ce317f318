"""OpenAI's files and fine-tuning API through Envoy, driven by the official `openai` client: upload, create a job,
follow it and its events until it succeeds, chat with its fine_tuned_model, read its metrics file, delete the file;
a validation file's loss after each epoch; a fine-tuned model trained further; the model deleted. The jobs run on the
tiny random GPT-2 beside a running llm service. (Bad input: test_fine_tuning_errors.py; API keys and owners:
test_fine_tuning_owners.py.)"""
import csv
import io

import httpx
import openai
import pytest

from tests.fine_tuning_service import (STATUSES, chat_lines, client, gateway, llm, models_dir,  # noqa: F401
                                       trainer, wait_for_end)

TWO_EPOCHS = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}}


@pytest.fixture(scope="module")
def trained(client):
    """A file, and the job that trained on it, with every status it was seen in."""
    uploaded = client.files.create(file=("colours.jsonl", chat_lines(12)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="base", training_file=uploaded.id, suffix="colours", seed=7,
                                         method=TWO_EPOCHS, metadata={"team": "docs"})
    seen = [job.status]
    return uploaded, job, wait_for_end(client, job.id, seen), seen


def test_an_upload_is_openais_file_object(client, trained):
    uploaded, _, _, _ = trained
    assert uploaded.id.startswith("file-") and uploaded.object == "file" and uploaded.purpose == "fine-tune"
    assert uploaded.filename == "colours.jsonl" and uploaded.bytes == len(chat_lines(12))
    assert isinstance(uploaded.created_at, int)
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).content == chat_lines(12)
    assert uploaded.id in [f.id for f in client.files.list(purpose="fine-tune").data]


def test_a_job_goes_from_validating_its_files_to_succeeded_and_names_its_model(trained):
    uploaded, created, job, seen = trained
    assert created.status == "validating_files" and created.object == "fine_tuning.job"
    assert created.id.startswith("ftjob-") and created.fine_tuned_model is None
    assert created.hyperparameters.n_epochs == 2 and created.hyperparameters.learning_rate_multiplier == "auto"
    assert set(seen) <= set(STATUSES) and seen[-1] == "succeeded", seen
    assert job.fine_tuned_model == "ft-colours-" + job.id.removeprefix("ftjob-")
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == 4
    assert job.hyperparameters.learning_rate_multiplier == 1
    assert (job.training_file, job.validation_file, job.seed, job.model) == (uploaded.id, None, 7, "base")
    assert job.metadata == {"team": "docs"} and job.user_provided_suffix == "colours"
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at and job.error is None


def test_its_events_say_each_step_and_its_metrics_file_has_a_row_a_step(client, trained):
    _, _, job, _ = trained
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert all(e.object == "fine_tuning.job.event" and e.id.startswith("ftevent-") for e in events)
    assert events[0].message.startswith("Job succeeded")  # newest first
    metrics = [e for e in events if e.type == "metrics"]
    total = metrics[0].data["total_steps"]
    assert total == 6  # 12 examples in batches of 4, twice
    assert sorted(e.data["step"] for e in metrics) == list(range(1, total + 1))
    assert all(e.data["train_loss"] > 0 for e in metrics)
    page = client.fine_tuning.jobs.list_events(job.id, limit=2)
    after = client.fine_tuning.jobs.list_events(job.id, limit=2, after=page.data[-1].id)
    assert [e.id for e in page.data + after.data] == [e.id for e in events[:4]] and page.has_more
    [result] = job.result_files
    rows = list(csv.DictReader(io.StringIO(client.files.content(result).text)))
    assert [int(row["step"]) for row in rows] == list(range(1, total + 1))
    assert {"train_loss", "train_mean_token_accuracy"} <= set(rows[0])
    assert client.files.retrieve(result).purpose == "fine-tune-results"


def test_the_model_answers_as_soon_as_the_job_succeeded(client, trained, gateway):
    _, _, job, _ = trained
    answer = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=4, temperature=0,
                                            messages=[{"role": "user", "content": "Question number 3?"}])
    assert answer.model == job.fine_tuned_model and answer.choices[0].message.content
    listed = {model.id: model for model in client.models.list().data}
    assert listed[job.fine_tuned_model].parent == client.models.retrieve("base").id
    native = httpx.get(f"{gateway.url}/llm/jobs/{job.id}").json()
    assert native["kind"] == "fine_tune" and native["status"] == "succeeded"
    assert native["adapter"] == job.fine_tuned_model and native["params"]["fine_tune"]["n_epochs"] == 2
    adapter = httpx.get(f"{gateway.url}/llm/adapters/{job.fine_tuned_model}").json()
    assert adapter["versions"][0]["job_id"] == job.id and adapter["versions"][0]["serving"]


def test_a_validation_file_is_measured_after_each_epoch(client):
    training = client.files.create(file=("train.jsonl", chat_lines(12)), purpose="fine-tune")
    validation = client.files.create(file=("valid.jsonl", chat_lines(10, "Red.")), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="base", training_file=training.id, validation_file=validation.id,
                                         method=TWO_EPOCHS)
    job = wait_for_end(client, job.id)
    assert job.status == "succeeded" and job.validation_file == validation.id
    measured = [e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
                if e.type == "metrics" and "valid_loss" in e.data]
    assert len(measured) == 2 and all(m["valid_loss"] > 0 for m in measured)
    rows = list(csv.DictReader(io.StringIO(client.files.content(job.result_files[0]).text)))
    assert sum(1 for row in rows if row["valid_loss"]) == 2


def test_a_fine_tuned_model_is_trained_further_then_deleted(client, trained, gateway):
    uploaded, _, first, _ = trained
    job = client.fine_tuning.jobs.create(model=first.fine_tuned_model, training_file=uploaded.id,
                                         method={"type": "supervised", "supervised": {"hyperparameters": {
                                             "n_epochs": 1, "batch_size": 4}}})
    job = wait_for_end(client, job.id)
    assert job.status == "succeeded" and job.model == first.fine_tuned_model
    assert job.fine_tuned_model != first.fine_tuned_model
    native = httpx.get(f"{gateway.url}/llm/jobs/{job.id}").json()
    assert native["params"]["fine_tune"]["model"] == first.fine_tuned_model
    deleted = client.models.delete(job.fine_tuned_model)
    assert (deleted.id, deleted.deleted, deleted.object) == (job.fine_tuned_model, True, "model")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=job.fine_tuned_model, messages=[{"role": "user", "content": "Hi"}])
    assert job.fine_tuned_model not in {model.id for model in client.models.list().data}


def test_deleting_a_file_keeps_the_model_it_trained(client, trained):
    uploaded = client.files.create(file=("gone.jsonl", chat_lines(10)), purpose="fine-tune")
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    _, _, job, _ = trained
    assert client.models.retrieve(job.fine_tuned_model).id == job.fine_tuned_model
