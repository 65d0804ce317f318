"""The playground's fine-tuning panel in a real headless Chromium against the whole system behind real Envoy: a bad
file refused with its line named in place, a good one uploaded and offered, a hyperparameter out of range marked on
its field, a job started whose loss curve grows until it succeeds, and the new model asked beside the base model.
The method choice: DPO's beta and reinforcement's grader and hyperparameters shown only for their method, what is
set there in the job the API returns (read with the official `openai` client), a grader that is not JSON refused
before sending and one the trainer refuses marked on its field, and the curve drawing train_loss for DPO and the
reward for reinforcement."""
import json
import os
import re

import openai
import pytest
from playwright.sync_api import expect

from devtools import browser
from devtools.processes import start_system
from tests.fine_tuning_service import chat_lines, preference_lines, prompt_lines

JOB_TIMEOUT_MS = 180_000
EXACT = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
         "operation": "eq"}
METHOD_FIELDS = {"dpo": ["#ft-beta"], "reinforcement": ["#ft-grader", "#ft-compute_multiplier", "#ft-temperature",
                                                       "#ft-max_completion_tokens", "#ft-skip_uniform_groups",
                                                       "#ft-eval_interval", "#ft-eval_samples"]}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    if reason := browser.missing_reason():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason} (.ci/run installs it)")
        pytest.skip(reason)
    with start_system(tmp_path_factory.mktemp("playground-ft") / "models") as system:
        yield system


@pytest.fixture(scope="module")
def client(system):
    with openai.OpenAI(base_url=f"{system.gateway.url}/v1", api_key=system.token, max_retries=0,
                       timeout=60) as made:
        yield made


@pytest.fixture(scope="module")
def page(system):
    with browser.headless_chromium() as context:
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{system.gateway.url}/playground")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
        page.locator("#api-key").fill(system.token)
        page.locator("#api-key").blur()
        yield page
        assert not problems, problems


def test_upload_train_watch_and_ask_beside_the_base(page, tmp_path):
    panel = page.locator("#fine-tune")
    bad, good = tmp_path / "bad.jsonl", tmp_path / "good.jsonl"
    bad.write_text("{}\n" * 12)
    good.write_bytes(chat_lines(12))
    panel.locator("#upload-file").set_input_files(str(bad))
    panel.get_by_role("button", name="Upload").click()
    expect(panel.locator("#upload-file-error")).to_contain_text("line 1: messages must be a non-empty list")
    expect(panel.locator("#upload-file")).to_have_attribute("aria-invalid", "true")
    panel.locator("#upload-file").set_input_files(str(good))
    panel.get_by_role("button", name="Upload").click()
    expect(panel.locator("#upload-result")).to_contain_text("uploaded file-")
    uploaded = panel.locator("#upload-result").inner_text().split()[1]
    expect(panel.locator("#ft-training_file")).to_have_value(uploaded)
    panel.locator("#ft-n_epochs").fill("0")
    panel.get_by_role("button", name="Start fine-tuning").click()
    expect(panel.locator("#ft-n_epochs-error")).to_contain_text("between 1 and 50")
    expect(panel.locator("#ft-n_epochs")).to_have_attribute("aria-invalid", "true")
    panel.locator("#ft-n_epochs").fill("2")
    panel.locator("#ft-batch_size").fill("4")
    panel.locator("#ft-suffix").fill("page")
    panel.get_by_role("button", name="Start fine-tuning").click()
    progress = panel.locator("#fine-tune-progress")
    expect(progress).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(progress).to_contain_text("model ft-page-")
    assert int(panel.locator("#fine-tune-curve").get_attribute("data-points")) == 6  # 12 examples, batches of 4, twice
    compare = panel.locator("#compare-form")
    expect(compare).to_be_visible()
    compare.locator("#compare-message").fill("Question number 4?")
    compare.get_by_role("button", name="Ask both").click()
    for column in ("tuned", "base"):
        answer = compare.locator(f'[data-model="{column}"] output')
        expect(answer).not_to_have_text("…", timeout=30_000)
        expect(answer).not_to_be_empty()
    expect(compare.locator('[data-model="tuned"] h3')).to_contain_text("ft-page-")


def upload(panel, path) -> str:
    result = panel.locator("#upload-result")
    before = result.inner_text()
    panel.locator("#upload-file").set_input_files(str(path))
    panel.get_by_role("button", name="Upload").click()
    expect(result).not_to_have_text(before)
    expect(result).to_contain_text("uploaded file-")
    uploaded = result.inner_text().split()[1]
    expect(panel.locator("#ft-training_file")).to_have_value(uploaded)
    return uploaded


def choose_method(panel, method: str) -> None:
    panel.locator("#ft-method").select_option(method)
    for shown, fields in METHOD_FIELDS.items():
        for field in fields:
            (expect(panel.locator(field)).to_be_visible if shown == method else
             expect(panel.locator(field)).to_be_hidden)()


def start(panel) -> str:
    """Starts a job with the form as it is; its id once the panel watched it succeed."""
    progress = panel.locator("#fine-tune-progress")
    before = progress.get_attribute("data-job") or ""
    panel.get_by_role("button", name="Start fine-tuning").click()
    expect(progress).to_have_attribute("data-job", re.compile(rf"^(?!{re.escape(before)}$).+"))  # the new job's
    expect(progress).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    return progress.get_attribute("data-job")


def test_dpo_shows_beta_only_and_its_hyperparameters_reach_the_job(page, client, tmp_path):
    panel = page.locator("#fine-tune")
    choose_method(panel, "supervised")  # the default: neither method's own fields
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(preference_lines(12))
    upload(panel, pairs)
    choose_method(panel, "dpo")
    for name, value in (("n_epochs", "1"), ("batch_size", "4"), ("learning_rate_multiplier", ""), ("beta", "0.3"),
                        ("suffix", "page-dpo")):
        panel.locator(f"#ft-{name}").fill(value)
    job = client.fine_tuning.jobs.retrieve(start(panel))
    assert job.method.type == "dpo" and job.fine_tuned_model.startswith("ft-page-dpo-")
    shown = job.method.dpo.hyperparameters
    assert (shown.beta, shown.n_epochs, shown.batch_size, shown.learning_rate_multiplier) == (0.3, 1, 4, 1)
    curve = panel.locator("#fine-tune-curve")
    assert int(curve.get_attribute("data-points")) == 3  # 12 pairs, 4 a step, once
    expect(panel.locator("#fine-tune-curve-summary")).to_contain_text("train_loss")
    expect(panel.locator("#fine-tune-progress")).to_contain_text("train_loss")


def test_reinforcement_sends_the_grader_and_its_hyperparameters_and_draws_the_reward(page, client, tmp_path):
    panel = page.locator("#fine-tune")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(prompt_lines(12))
    uploaded = upload(panel, prompts)
    choose_method(panel, "reinforcement")
    assert json.loads(panel.locator("#ft-grader").input_value()) == EXACT  # the example it is prefilled with
    jobs_before = len(client.fine_tuning.jobs.list(limit=100).data)
    panel.locator("#ft-grader").fill('{"type": "string_check",')
    panel.get_by_role("button", name="Start fine-tuning").click()
    expect(panel.locator("#ft-grader-error")).to_contain_text("the grader is not JSON")
    expect(panel.locator("#ft-grader")).to_have_attribute("aria-invalid", "true")
    assert len(client.fine_tuning.jobs.list(limit=100).data) == jobs_before  # not sent
    panel.locator("#ft-grader").fill(json.dumps({**EXACT, "operation": "almost"}))
    panel.get_by_role("button", name="Start fine-tuning").click()  # the trainer names grader.operation
    expect(panel.locator("#ft-grader")).to_have_attribute("aria-invalid", "true")
    expect(panel.locator("#ft-grader-error")).not_to_be_empty()
    expect(panel.locator("#fine-tune-form .form-error")).to_contain_text("(field: grader)")
    panel.locator("#ft-grader").fill(json.dumps(EXACT))
    assert panel.locator("#ft-training_file").input_value() == uploaded
    for name, value in (("n_epochs", "1"), ("batch_size", "2"), ("compute_multiplier", "0.25"),
                        ("temperature", "0.7"), ("max_completion_tokens", "8"), ("eval_samples", "3"),
                        ("suffix", "page-rl")):
        panel.locator(f"#ft-{name}").fill(value)
    panel.locator("#ft-skip_uniform_groups").check()
    job = client.fine_tuning.jobs.retrieve(start(panel))
    assert job.method.type == "reinforcement" and job.fine_tuned_model.startswith("ft-page-rl-")
    assert job.method.reinforcement.grader.model_dump(exclude_none=True) == EXACT
    shown = job.method.reinforcement.hyperparameters
    assert (shown.n_epochs, shown.batch_size, shown.compute_multiplier, shown.temperature,
            shown.max_completion_tokens, shown.skip_uniform_groups) == (1, 2, 0.25, 0.7, 8, True)
    assert (shown.eval_interval, shown.eval_samples) == (6, 3)  # eval_interval left empty: auto, one epoch (12 / 2)
    assert int(panel.locator("#fine-tune-curve").get_attribute("data-points")) == 6  # 12 prompts, 2 a step
    expect(panel.locator("#fine-tune-curve-summary")).to_contain_text("reward")
    expect(panel.locator("#fine-tune-progress")).to_contain_text("reward")
