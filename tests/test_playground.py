"""The /playground page in a real headless Chromium against the whole system behind real Envoy on loopback: three
streamed answers, the bigram and LSTM panel, a tiny SFT job whose curve grows until it succeeds and whose adapter the
ask panel then serves, bad fields rejected in place, a cut event stream shown as cut, cancel, a phone-width screen.
Screenshots are checked for content; the page loads nothing from anywhere but the gateway and stores no token."""
import os
import pathlib
import re

import numpy
import pytest
from PIL import Image
from playwright.sync_api import expect

from devtools import browser
from devtools.processes import start_gateway, start_system
from gateway.playground_routes import playground_files
from textgen.paths import ROOT

TINY_SFT = {"max_examples": 40, "num_train_epochs": 1, "max_length": 96, "learning_rate": 0.005, "lora_r": 4}
LONG_SFT = {"max_examples": 100000, "num_train_epochs": 20, "max_length": 96}
JOB_TIMEOUT_MS = 120_000
ANSWER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium_here():
    if reason := browser.missing_reason():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason} (.ci/run installs it)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def system(chromium_here, tmp_path_factory):
    with start_system(tmp_path_factory.mktemp("playground") / "models") as running:
        yield running


@pytest.fixture(scope="module")
def context(system):
    with browser.headless_chromium() as context:
        requested = []
        context.on("request", lambda request: requested.append(request.url))
        context.requested = requested
        yield context


@pytest.fixture(scope="module")
def page(context, system):
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{system.gateway.url}/playground")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
    page.problems = problems
    yield page
    assert not page.problems, page.problems


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> pathlib.Path:
    """Where this module's screenshots are kept, under pytest's temporary folders (a blank one is named in its
    failure)."""
    return tmp_path_factory.mktemp("playground-screenshots")


def assert_not_blank(path: pathlib.Path) -> None:
    """A screenshot with something drawn on it: its grey levels vary, over more than a sliver of the picture."""
    pixels = numpy.asarray(Image.open(path).convert("L"), dtype=float)
    background = numpy.median(pixels)
    assert pixels.std() > 10 and (abs(pixels - background) > 40).mean() > 0.01, f"{path} looks blank"


def shoot(page, path: pathlib.Path) -> None:
    page.screenshot(path=path, full_page=True)
    assert_not_blank(path)


def column(page, adapter: str):
    return page.locator(f'.column[data-adapter="{adapter}"]')


def test_every_input_has_a_label_and_fields_come_from_openapi(page):
    unlabelled = page.locator("input, select, textarea").evaluate_all(
        "nodes => nodes.filter(node => !node.labels.length).map(node => node.id || node.name)")
    assert unlabelled == []
    # Defaults and ranges read from /openapi.json's x-default and x-range (the protos' comments).
    expect(page.locator("#train-sft-max_examples")).to_have_value("200")
    expect(page.locator("#train-sft-max_examples-help")).to_have_text("1..100000, default 200")
    expect(page.locator("#train-rl-num_generations")).to_have_attribute("max", "32")


def test_a_question_streams_three_answers_side_by_side(page, shots):
    page.locator("#ask-example").select_option(label="Harbour")
    page.locator("#ask-question").press("Enter")  # the keyboard is enough
    columns = page.locator(".column")
    expect(columns).to_have_count(3)
    for adapter in ("base", "sft", "rl"):
        expect(column(page, adapter)).to_have_attribute("data-state", "complete", timeout=ANSWER_TIMEOUT_MS)
        answer = column(page, adapter).locator(".answer").inner_text()
        assert answer.startswith("That is a great question.") and answer.rstrip().endswith(
            "Let me know if you have any other questions."), answer
        assert int(column(page, adapter).locator('[data-field="tokens"]').inner_text()) > 0
        expect(column(page, adapter).locator('[data-field="first_token"]')).to_have_text(
            re.compile(r"^\d+ ms$"))
        expect(column(page, adapter).locator('[data-field="format"]')).to_have_text(
            re.compile("completed by the service|closed by the model"))
    # Nothing published yet: the sft and rl columns say whom they fell back to.
    expect(column(page, "sft").locator('[data-field="adapter"]')).to_have_text("base")
    expect(column(page, "sft").locator('[data-field="warning"]')).to_contain_text("not available")
    shoot(page, shots / "ask.png")


def test_the_bigram_and_lstm_panel_generates_and_rejects_a_bad_length(page):
    for form, start in (("#bigram", "the"), ("#lstm", "the captain")):
        page.locator(f"{form} button[type=submit]").click()
        expect(page.locator(f"{form} output")).to_have_text(re.compile(rf"^{start}\b.+", re.IGNORECASE))
    page.locator("#bigram-length").fill("0")
    page.locator("#bigram button[type=submit]").click()
    expect(page.locator("#bigram .form-error")).to_have_text(
        "INVALID_ARGUMENT: length must be between 1 and 1000 (got 0) (field: length)")
    expect(page.locator("#bigram-length")).to_have_attribute("aria-invalid", "true")
    page.locator("#bigram-length").fill("15")


def test_bad_training_fields_and_a_wrong_token_are_shown_in_place(page, system):
    page.locator("#trainer-token").fill("wrong-token")
    page.locator("#train-form button[type=submit]").click()
    expect(page.locator("#train-form .form-error")).to_contain_text("UNAUTHENTICATED: training and cancelling need")
    page.locator("#trainer-token").fill(system.token)
    page.locator("#train-sft-max_length").fill("8")
    page.locator("#train-form button[type=submit]").click()
    expect(page.locator("#train-form .form-error")).to_have_text(
        "INVALID_ARGUMENT: max_length must be between 32 and 1024 (got 8) (field: max_length)")
    expect(page.locator("#train-sft-max_length-error")).to_have_text("max_length must be between 32 and 1024 (got 8)")
    expect(page.locator("#train-sft-max_length")).to_have_attribute("aria-invalid", "true")


def test_a_tiny_sft_job_grows_its_curve_succeeds_and_the_ask_panel_serves_it(page, context, system, shots):
    page.locator("#trainer-token").fill(system.token)
    for name, value in TINY_SFT.items():
        page.locator(f"#train-sft-{name}").fill(str(value))
    page.locator("#train-form button[type=submit]").click()
    progress = page.locator("#job-progress")
    expect(progress).to_have_attribute("data-status", "running", timeout=JOB_TIMEOUT_MS)
    # The curve gets its first points while the job still runs (its evaluation comes after the last step).
    expect(page.locator('#curve:not([data-points="0"])')).to_be_attached(timeout=JOB_TIMEOUT_MS)
    assert progress.get_attribute("data-status") == "running"
    expect(progress).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    assert int(page.locator("#curve").get_attribute("data-points")) >= 2
    expect(page.locator("#curve-summary")).to_contain_text("loss")
    job_id = progress.get_attribute("data-job-id")
    row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row.locator(".evaluation")).to_contain_text("F1 ")
    version = row.locator("td").nth(4).inner_text()  # the version the job published
    expect(column(page, "sft")).to_have_attribute("data-version", version)
    shoot(page, shots / "train.png")

    page.locator("#ask form button[type=submit]").click()
    expect(column(page, "sft")).to_have_attribute("data-state", "complete", timeout=ANSWER_TIMEOUT_MS)
    expect(column(page, "sft").locator('[data-field="adapter"]')).to_have_text("sft")
    expect(column(page, "sft").locator('[data-field="version"]')).to_have_text(version)
    # The token lived in the page's memory only.
    assert context.cookies() == []
    assert page.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 0]


def test_a_cut_event_stream_is_shown_as_cut_and_the_job_can_be_cancelled(context, system):
    """A gateway whose trainer routes time out after 3 s cuts the events of a long job mid-stream."""
    addresses = {name: service.address for name, service in system.services.items()}
    with start_gateway(route_timeouts={"trainer": 3}, **addresses) as short:
        page = context.new_page()
        page.goto(f"{short.url}/playground")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
        page.locator("#trainer-token").fill(system.token)
        for name, value in LONG_SFT.items():
            page.locator(f"#train-sft-{name}").fill(str(value))
        page.locator("#train-form button[type=submit]").click()
        progress = page.locator("#job-progress")
        expect(progress).to_have_attribute("data-status", "cut", timeout=30_000)
        expect(progress).to_contain_text("cut before the job finished")
        row = page.locator(f'#jobs tr[data-job-id="{progress.get_attribute("data-job-id")}"]')
        row.get_by_role("button", name="Cancel").click()
        expect(row).to_have_attribute("data-status", "cancelled", timeout=30_000)
        page.close()


def test_nothing_is_loaded_from_anywhere_but_the_gateway(context, system):
    foreign = [url for url in context.requested if not url.startswith(("http://127.0.0.1:", "data:"))]
    assert context.requested and foreign == []


def test_a_phone_width_screen_needs_no_sideways_scrolling(page, shots):
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shoot(page, shots / "phone.png")
    page.set_viewport_size({"width": 1280, "height": 800})


def test_the_readme_states_the_pages_size():
    files = playground_files()
    stated = re.search(r"([\d,]+) bytes in (\d+) files", (ROOT / "docs" / "usage.md").read_text())
    assert stated, "docs/usage.md's playground section states the page's size"
    assert (int(stated[1].replace(",", "")), int(stated[2])) == (sum(f.stat().st_size for f in files), len(files))
