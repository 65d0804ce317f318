"""OpenAI's dpo and reinforcement methods through Envoy, driven by the official `openai` client: preference pairs
trained with DPO (each step's loss, reward margin and accuracy as events; the same on a validation file after each
epoch), prompts trained with GRPO and a grader (the reward, each grader's mean and the share of flat groups per
step; a validation file's prompts graded every eval_interval steps), a group that scores alike replaced when asked
(the prompts skipped counted), and each served as a chat model.
The jobs run on the tiny random GPT-2. (Bad input: test_fine_tuning_errors.py.)"""
import openai
import pytest

from tests.fine_tuning_service import (client, gateway, llm, models_dir, preference_lines,  # noqa: F401
                                       prompt_lines, trainer, wait_for_end)

FUZZY = {"type": "text_similarity", "name": "close", "input": "{{sample.output_text}}",
         "reference": "{{item.answer}}", "evaluation_metric": "fuzzy_match"}
NEVER_EMPTY = {"type": "string_check", "name": "never_empty", "input": "{{sample.output_text}}{{item.answer}}",
               "reference": "", "operation": "ne"}  # every answer passes: each group scores alike


def metrics_events(client, job) -> list[dict]:
    events = client.fine_tuning.jobs.list_events(job.id, limit=1000).data
    return [event.data for event in reversed(events) if event.type == "metrics"]


def upload(client, name: str, content: bytes) -> str:
    return client.files.create(file=(name, content), purpose="fine-tune").id


@pytest.fixture(scope="module")
def dpo_job(client):
    training, validation = upload(client, "pairs.jsonl", preference_lines(12)), upload(client, "v.jsonl",
                                                                                        preference_lines(10))
    method = {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}}
    created = client.fine_tuning.jobs.create(model="base", training_file=training, validation_file=validation,
                                             method=method, suffix="short")
    return created, wait_for_end(client, created.id)


def test_a_dpo_job_trains_on_preference_pairs_and_shows_its_method(dpo_job):
    created, job = dpo_job
    assert created.method.type == "dpo" and created.method.dpo.hyperparameters.beta == "auto"
    assert job.status == "succeeded", job.error
    assert job.method.dpo.hyperparameters.beta == 0.1 and job.method.dpo.hyperparameters.n_epochs == 2
    assert job.trained_tokens > 0
    assert job.hyperparameters is None or job.hyperparameters.n_epochs is None  # the supervised place stays empty


def test_each_dpo_step_reports_loss_margin_and_accuracy_and_each_epoch_its_validation(client, dpo_job):
    _, job = dpo_job
    metrics = metrics_events(client, job)
    steps = [m for m in metrics if "train_loss" in m]
    assert [m["step"] for m in steps] == [1, 2, 3, 4, 5, 6]  # 12 pairs in batches of 4, twice
    assert all({"train_reward_margin", "train_reward_accuracy"} <= set(m) for m in steps)
    assert all(0 <= m["train_reward_accuracy"] <= 1 for m in steps)
    validations = [m for m in metrics if "valid_reward_margin" in m]
    assert len(validations) == 2 and all("valid_loss" in m and "valid_reward_accuracy" in m for m in validations)


def test_a_dpo_model_answers_and_can_be_trained_further_with_dpo(client, dpo_job):
    _, job = dpo_job
    answer = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=4, temperature=0,
                                            messages=[{"role": "user", "content": "Question number 3?"}])
    assert answer.choices[0].message.content
    training = upload(client, "more-pairs.jsonl", preference_lines(10))
    further = client.fine_tuning.jobs.create(model=job.fine_tuned_model, training_file=training, method={
        "type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 1, "batch_size": 5, "beta": 0.5}}})
    ended = wait_for_end(client, further.id)
    assert ended.status == "succeeded", ended.error
    assert ended.model == job.fine_tuned_model and ended.method.dpo.hyperparameters.beta == 0.5


def rl_job(client, grader: dict, validation_file: str | openai.NotGiven = openai.NOT_GIVEN, **hyperparameters):
    training = upload(client, "prompts.jsonl", prompt_lines(12))
    method = {"type": "reinforcement", "reinforcement": {"grader": grader, "hyperparameters": {
        "compute_multiplier": 0.25, "max_completion_tokens": 8, "batch_size": 2, **hyperparameters}}}
    created = client.fine_tuning.jobs.create(model="base", training_file=training, method=method,
                                             validation_file=validation_file)
    return created, wait_for_end(client, created.id)


def test_a_reinforcement_job_reports_the_reward_each_graders_mean_and_flat_groups(client):
    created, job = rl_job(client, {"type": "multi", "name": "both", "graders": {"close": FUZZY, "always": NEVER_EMPTY},
                                   "calculate_output": "0.75 * close + 0.25 * always"})
    assert created.method.type == "reinforcement" and created.method.reinforcement.grader.type == "multi"
    assert job.status == "succeeded", job.error
    shown = job.method.reinforcement.hyperparameters
    assert (shown.compute_multiplier, shown.temperature, shown.max_completion_tokens) == (0.25, 1, 8)
    assert (shown.eval_interval, shown.eval_samples) == (6, 2)  # auto: one epoch's steps, a group's answers
    assert job.trained_tokens > 0 and job.validation_file is None
    steps = [m for m in metrics_events(client, job) if "reward" in m]
    assert [m["step"] for m in steps] == [1, 2, 3, 4, 5, 6]  # 12 prompts, 2 a step, one pass
    for m in steps:
        assert m["grader_always"] == 1 and 0 <= m["grader_close"] <= 1 and 0 <= m["frac_reward_zero_std"] <= 1
        assert m["reward"] == pytest.approx(0.75 * m["grader_close"] + 0.25, abs=1e-6)
    answer = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=4, temperature=0,
                                            messages=[{"role": "user", "content": "Question number 3?"}])
    assert answer.choices[0].message.content


def test_skipping_uniform_groups_draws_other_prompts_and_counts_them(client):
    _, job = rl_job(client, NEVER_EMPTY, skip_uniform_groups=True, n_epochs=1)
    assert job.status == "succeeded", job.error
    assert job.method.reinforcement.hyperparameters.skip_uniform_groups is True
    steps = [m for m in metrics_events(client, job) if "reward" in m]
    # Every group scores alike, so each step drew 8 groups, skipped 7 and trained the last, flat as well.
    assert steps and all(m["skipped_prompts"] == 7 and m["trained_flat"] == 1 for m in steps)
    assert all(m["frac_reward_zero_std"] == 1 for m in steps)


def test_a_validation_files_prompts_are_graded_every_eval_interval_steps(client):
    validation = upload(client, "validation.jsonl", prompt_lines(10))  # the fewest a file may hold
    _, job = rl_job(client, {"type": "multi", "name": "both", "graders": {"close": FUZZY, "always": NEVER_EMPTY},
                             "calculate_output": "0.5 * close + 0.5 * always"},
                    validation_file=validation, eval_interval=2, eval_samples=2)
    assert job.status == "succeeded", job.error
    assert job.validation_file == validation
    evaluations = [m for m in metrics_events(client, job) if "valid_reward" in m]
    assert [m["step"] for m in evaluations] == [2, 4, 6]  # 6 steps, evaluated every 2
    for m in evaluations:
        assert m["valid_grader_always"] == 1 and 0 <= m["valid_grader_close"] <= 1
        assert m["valid_reward"] == pytest.approx(0.5 * m["valid_grader_close"] + 0.5, abs=1e-6)
