"""The playground's fine-tuning panel in a real headless Chromium against the whole system behind real Envoy: a bad
file refused with its line named in place, a good one uploaded and offered, a hyperparameter out of range marked on
its field, a job started whose loss curve grows until it succeeds, and the new model asked beside the base model."""
import os

import pytest
from playwright.sync_api import expect

from devtools import browser
from devtools.processes import start_system
from tests.fine_tuning_service import chat_lines

JOB_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if reason := browser.missing_reason():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason} (.ci/run installs it)")
        pytest.skip(reason)
    with start_system(tmp_path_factory.mktemp("playground-ft") / "models") as system, \
            browser.headless_chromium() as context:
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
