"""The /playground page in a real headless Chromium against the whole system behind real Envoy on loopback: three
streamed answers, the bigram and LSTM panel, a tiny SFT job into a named adapter whose curve grows until it succeeds
and which the ask panel then offers and serves, an RL job started from it, bad fields and adapter names rejected in
place, two adapters compared side by side, the adapters panel switching and deleting versions (a 409 shown as the
service says it), an answer's token probabilities on hover and keyboard focus (the chat API's logprobs for the same
greedy request), a cut event stream shown as cut, cancel, a phone-width screen. Screenshots are checked for content;
the page loads nothing from anywhere but the gateway and stores no API key."""
import json
import math
import os
import pathlib
import re

import httpx
import numpy
import pytest
from PIL import Image
from playwright.sync_api import expect

from devtools import browser
from devtools.models import FACTS, train_tiny_adapter
from devtools.processes import start_gateway, start_system
from gateway.playground_routes import playground_files
from services.trainer.training.llm_reload import notify_llm
from textgen.paths import ROOT

TINY_SFT = {"max_examples": 40, "num_train_epochs": 1, "max_length": 96, "learning_rate": 0.005, "lora_r": 4}
LONG_SFT = {"max_examples": 100000, "num_train_epochs": 20, "max_length": 96}
TINY_RL = {"steps": 2, "max_new_tokens": 8, "num_generations": 2}
NAMED = "tiny-named"  # the adapter the page's SFT job publishes
JOB_TIMEOUT_MS = 120_000
ANSWER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium_here():
    if reason := browser.missing_reason():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason} (.ci/run installs it)")
        pytest.skip(reason)


def key(system) -> dict:
    return {"authorization": f"Bearer {system.token}"}


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
    # The system's gateway checks API keys: without one the lists say so; entered, they load.
    expect(page.locator("#adapters-error")).to_contain_text("UNAUTHENTICATED")
    page.locator("#api-key").fill(system.token)
    page.locator("#api-key").blur()
    expect(page.locator("#adapters-error")).to_have_text("")
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


def sent(context, path: str) -> int:
    """How many requests the browser has sent to `path` so far."""
    return sum(url.endswith(path) for url in context.requested)


def start_job(page, kind: str, fields: dict) -> str:
    """Starts a job from the train form with `fields` filled in; returns its id once the progress line follows it."""
    progress = page.locator("#job-progress")
    before = progress.get_attribute("data-job-id")
    page.locator(f'#train-form input[name="kind"][value="{kind}"]').check()
    for name, value in fields.items():
        page.locator(f"#train-{kind}-{name}").fill(str(value))
    page.locator("#train-form button[type=submit]").click()
    page.wait_for_function("([node, before]) => node.dataset.jobId && node.dataset.jobId !== before",
                           arg=[progress.element_handle(), before])
    expect(page.locator("#train-form .form-error")).to_be_hidden()
    return progress.get_attribute("data-job-id")


def test_every_input_has_a_label_and_fields_come_from_openapi(page):
    unlabelled = page.locator("input, select, textarea").evaluate_all(
        "nodes => nodes.filter(node => !node.labels.length).map(node => node.id || node.name)")
    assert unlabelled == []
    # Defaults and ranges read from /openapi.json's x-default and x-range (the protos' comments).
    expect(page.locator("#train-sft-max_examples")).to_have_value("200")
    expect(page.locator("#train-sft-max_examples-help")).to_have_text("1..100000, default 200")
    expect(page.locator("#train-rl-num_generations")).to_have_attribute("max", "32")
    expect(page.locator("#train-sft-adapter")).to_have_value("sft")
    # RL's from_adapter is a choice of the published adapters, and the default even before it is published.
    expect(page.locator("select#train-rl-from_adapter option")).to_have_text(["sft (no version published)"])
    expect(page.locator("#adapters .adapter-list")).to_have_text("No adapter is published yet.")


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


def test_bad_training_fields_and_a_wrong_key_are_shown_in_place(page, system):
    page.locator("#api-key").fill("wrong-key-0123456789")
    page.locator("#train-form button[type=submit]").click()
    expect(page.locator("#train-form .form-error")).to_contain_text("UNAUTHENTICATED: this call needs an API key")
    expect(page.locator("#api-key")).to_have_attribute("aria-invalid", "true")
    page.locator("#api-key").fill(system.token)
    page.locator("#train-sft-max_length").fill("8")
    page.locator("#train-form button[type=submit]").click()
    expect(page.locator("#train-form .form-error")).to_have_text(
        "INVALID_ARGUMENT: max_length must be between 32 and 1024 (got 8) (field: max_length)")
    expect(page.locator("#train-sft-max_length-error")).to_have_text("max_length must be between 32 and 1024 (got 8)")
    expect(page.locator("#train-sft-max_length")).to_have_attribute("aria-invalid", "true")
    page.locator("#train-sft-max_length").fill("96")


def test_an_adapter_name_the_trainer_would_refuse_is_not_sent_and_its_refusals_are_shown(page, context):
    rule = "lower-case letters, digits, '-' and '_', at most 64 characters, not 'base'"
    before = sent(context, "/llm/train_sft")
    for bad in ("Bad name", "x" * 65, "base", "-dash-first"):
        page.locator("#train-sft-adapter").fill(bad)
        page.locator("#train-form button[type=submit]").click()
        expect(page.locator("#train-form .form-error")).to_have_text(
            f"Not sent: adapter must be {rule} (got '{bad}') (field: adapter)")
        expect(page.locator("#train-sft-adapter")).to_have_attribute("aria-invalid", "true")
    assert sent(context, "/llm/train_sft") == before
    page.locator("#train-sft-adapter").fill("sft")
    # RL's own adapter field is the one marked, not SFT's hidden one of the same name.
    page.locator('#train-form input[name="kind"][value="rl"]').check()
    page.locator("#train-rl-adapter").fill("RL!")
    page.locator("#train-form button[type=submit]").click()
    expect(page.locator("#train-rl-adapter")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#train-sft-adapter")).not_to_have_attribute("aria-invalid", "true")
    page.locator("#train-rl-adapter").fill("rl")
    # What only the trainer knows, it says: nothing is published to start RL from.
    page.locator("#train-form button[type=submit]").click()
    expect(page.locator("#train-form .form-error")).to_have_text(re.compile(
        r"^FAILED_PRECONDITION: from_adapter 'sft' has no version published: run SFT first"))
    assert sent(context, "/llm/train_rl") == 1
    page.locator('#train-form input[name="kind"][value="sft"]').check()


def test_a_tiny_sft_job_into_a_named_adapter_grows_its_curve_and_the_ask_panel_serves_it(page, context, system, shots):
    start_job(page, "sft", {**TINY_SFT, "adapter": NAMED})
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
    expect(row.locator(".adapter")).to_have_text(NAMED)
    expect(row.locator(".evaluation")).to_contain_text("F1 ")
    version = row.locator(".version").inner_text()  # the version the job published
    # Published while the page is open: chosen in the ask panel, listed in the adapters panel with its job.
    expect(page.locator(f"#ask-choose-{NAMED}")).to_be_checked()
    expect(column(page, NAMED)).to_have_attribute("data-version", version)
    listed = page.locator(f'#adapters .adapter-card[data-adapter="{NAMED}"] tr[data-version="{version}"]')
    expect(listed).to_have_attribute("data-serving", "true")
    expect(listed).to_contain_text(job_id)
    expect(listed.locator(".evaluation")).to_have_text(row.locator(".evaluation").inner_text())
    shoot(page, shots / "train.png")

    page.locator("#ask form button[type=submit]").click()
    expect(column(page, NAMED)).to_have_attribute("data-state", "complete", timeout=ANSWER_TIMEOUT_MS)
    expect(column(page, NAMED).locator('[data-field="adapter"]')).to_have_text(NAMED)
    expect(column(page, NAMED).locator('[data-field="version"]')).to_have_text(version)
    # The key lived in the page's memory only.
    assert context.cookies() == []
    assert page.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 0]


def test_an_rl_job_starts_from_the_chosen_adapter(page):
    page.locator('#train-form input[name="kind"][value="rl"]').check()
    page.locator("#train-rl-from_adapter").select_option(NAMED)
    job_id = start_job(page, "rl", {**TINY_RL, "adapter": "tiny-rl"})
    row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
    expect(row.locator(".adapter")).to_have_text(f"tiny-rl (from {NAMED})")
    row.get_by_role("button", name="Cancel").click()  # its run is not the point; the next tests train nothing
    expect(row).to_have_attribute("data-status", re.compile("cancelled|succeeded|failed"), timeout=JOB_TIMEOUT_MS)
    page.locator('#train-form input[name="kind"][value="sft"]').check()


@pytest.fixture(scope="module")
def alpha_and_beta(system):
    """Published beside the page as the trainer publishes (then the llm service is told to reload): alpha's old
    version answers "Alpha", its current one "Bravo"; beta answers "Charlie". Returns alpha's (old, current)."""
    old = train_tiny_adapter(system.models_dir, "alpha", steps=60, answer="Alpha")
    new = train_tiny_adapter(system.models_dir, "alpha", steps=60, seed=1, answer="Bravo")
    train_tiny_adapter(system.models_dir, "beta", steps=60, seed=2, answer="Charlie")
    assert notify_llm(system.address("llm"))
    return old, new


def ask_only(page, *adapters: str) -> None:
    """Asks the fact the hand-published adapters learnt of `adapters` and no other, and waits for their answers."""
    question, context, _ = FACTS[0]
    page.locator("#ask-question").fill(question)
    page.locator("#ask-context").fill(context)
    for choice in page.locator(".choices input").all():
        choice.set_checked(choice.get_attribute("value") in adapters)
    page.locator("#ask form button[type=submit]").click()
    expect(page.locator(".column:not([hidden])")).to_have_count(len(adapters))
    for adapter in adapters:
        expect(column(page, adapter)).to_have_attribute("data-state", "complete", timeout=ANSWER_TIMEOUT_MS)


def test_two_adapters_answer_side_by_side(page, alpha_and_beta, shots):
    _, new = alpha_and_beta
    page.locator("#adapters .refresh").click()  # published by hand: the page lists them when asked
    expect(page.locator("#ask-choose-beta")).to_be_checked()
    ask_only(page, "alpha", "beta")
    expect(column(page, "alpha").locator('[data-field="version"]')).to_have_text(new)
    expect(column(page, "alpha").locator(".answer")).to_contain_text("Bravo")
    expect(column(page, "beta").locator('[data-field="adapter"]')).to_have_text("beta")
    expect(column(page, "beta").locator(".answer")).to_contain_text("Charlie")
    shoot(page, shots / "compare.png")
    for choice in page.locator(".choices input").all():
        choice.uncheck()
    page.locator("#ask form button[type=submit]").click()
    expect(page.locator("#ask .form-error")).to_have_text("Not sent: choose at least one model to ask")


def test_the_adapters_panel_switches_and_deletes_and_shows_a_409_as_said(page, system, alpha_and_beta, shots):
    old, new = alpha_and_beta
    alpha = page.locator('#adapters .adapter-card[data-adapter="alpha"]')
    expect(alpha.locator("tbody tr")).to_have_count(2)
    expect(alpha.locator(f'tr[data-version="{new}"] .serving-mark')).to_have_text("serving")
    accept = lambda dialog: dialog.accept()  # each deletion asks first
    page.on("dialog", accept)
    # Deleting the serving version: the service's 409, word for word.
    said = httpx.delete(f"{system.gateway.url}/llm/adapters/alpha/versions/{new}",
                        headers=key(system))
    assert said.status_code == 409
    alpha.get_by_role("button", name=f"Delete alpha version {new}").click()
    expect(alpha.locator(".field-error")).to_have_text(f"ABORTED: {said.json()['message']}")
    # Without the key nothing changes, and the key field says why.
    page.locator("#api-key").fill("wrong-key-0123456789")
    alpha.get_by_role("button", name=f"Serve alpha version {old}").click()
    expect(alpha.locator(".field-error")).to_contain_text("UNAUTHENTICATED")
    expect(page.locator("#api-key")).to_have_attribute("aria-invalid", "true")
    page.locator("#api-key").fill(system.token)
    # Rolled back: the panel marks the old version and the ask panel's alpha answers with it.
    alpha.get_by_role("button", name=f"Serve alpha version {old}").click()
    expect(alpha.locator(".serving")).to_have_text(old)
    expect(alpha.locator(f'tr[data-version="{old}"]')).to_have_attribute("data-serving", "true")
    expect(column(page, "alpha")).to_have_attribute("data-version", old)
    ask_only(page, "alpha")
    expect(column(page, "alpha").locator('[data-field="version"]')).to_have_text(old)
    expect(column(page, "alpha").locator(".answer")).to_contain_text("Alpha")
    shoot(page, shots / "adapters.png")
    # The version no longer serving can go; then the whole of beta.
    alpha.get_by_role("button", name=f"Delete alpha version {new}").click()
    expect(alpha.locator("tbody tr")).to_have_count(1)
    page.locator('#adapters .adapter-card[data-adapter="beta"]').get_by_role("button", name="Delete adapter beta").click()
    expect(page.locator('#adapters .adapter-card[data-adapter="beta"]')).to_have_count(0)
    expect(page.locator("#ask-choose-beta")).to_have_count(0)
    expect(column(page, "beta")).to_have_count(0)
    assert not (system.models_dir / "adapters" / "beta").exists()
    page.remove_listener("dialog", accept)


SHOWN_TOKEN = re.compile(r'^(".*") ([-+.\de]+)%(?: \(logprob (-?[.\d]+)\))?$')


def shown_token(text: str) -> tuple[str, float, float | None, float]:
    """A token's line in the details, `"token" 12.3% (logprob -2.095)`: the token, the percentage, the logprob, and
    half a unit of the percentage's last digit (how far its rounding may be from the exact value)."""
    found = SHOWN_TOKEN.fullmatch(text.strip())
    assert found, text
    digits = found[2].split("e")[0].split(".")
    exponent = int(found[2].split("e")[1]) if "e" in found[2] else 0
    half_unit = 0.5 * 10 ** (exponent - (len(digits[1]) if len(digits) > 1 else 0))
    return json.loads(found[1]), float(found[2]), found[3] and float(found[3]), half_unit


def assert_shown_as(shown: str, token: str, logprob: float) -> None:
    """The details show this token with exp(logprob) as a percentage (to the digits shown) and its logprob."""
    text, percentage, shown_logprob, half_unit = shown_token(shown)
    assert text == token, (shown, token)
    exact = math.exp(logprob) * 100
    # The page's stream and this request ran in different batches: allow float noise beyond the rounding.
    assert abs(percentage - exact) <= half_unit + 1e-4 * exact + 1e-9, (shown, exact)
    if shown_logprob is not None:
        assert abs(shown_logprob - logprob) <= 0.0005 + 1e-4, (shown, logprob)


def test_token_probabilities_show_on_hover_and_focus_and_match_the_api(page, system, alpha_and_beta, shots):
    """Alpha answers through the chat API in the QA form, each token a span whose details show its probability and
    the alternatives: the same numbers as the API's logprobs for the same greedy request."""
    page.locator("#ask-token-probabilities").check()
    ask_only(page, "alpha")
    alpha = column(page, "alpha")
    expect(alpha.locator('[data-field="path"]')).to_have_text("/v1/chat/completions")
    expect(alpha.locator('[data-field="adapter"]')).to_have_text("alpha")
    question, context, _ = FACTS[0]
    said = httpx.post(f"{system.gateway.url}/v1/chat/completions", timeout=60, headers=key(system), json={
        "model": "alpha", "messages": [{"role": "user", "content": f"Context: {context}\nQuestion: {question}"}],
        "max_tokens": int(page.locator("#ask-max_new_tokens").input_value()), "temperature": 0,
        "logprobs": True, "top_logprobs": 5}).json()["choices"][0]
    assert said["message"]["content"].startswith("That is a great question.")
    assert alpha.locator(".answer").inner_text() == said["message"]["content"]
    expect(alpha.locator(".answer .forced")).to_have_text("That is a great question.")
    expected = said["logprobs"]["content"]
    spans = alpha.locator(".answer .token")
    details = alpha.locator(".token-details")
    hovered = []  # what each span's details said
    position = 0  # the API's next token
    for span in spans.all():
        span.hover()
        expect(details).to_be_visible()
        hovered.append(details.inner_text())
        for chosen, alternatives in zip(details.locator(".chosen").all(), details.locator("ol").all(), strict=True):
            entry = expected[position]
            position += 1
            assert_shown_as(chosen.inner_text(), entry["token"], entry["logprob"])
            listed = alternatives.locator("li").all_inner_texts()
            assert len(listed) == len(entry["top_logprobs"]) == 5
            for shown, top in zip(listed, entry["top_logprobs"]):
                assert_shown_as(shown, top["token"], top["logprob"])
    # Every token was shown, but those whose text the service replaced when it completed the answer format.
    assert len(hovered) >= 2
    if not alpha.locator(".answer .added").count():
        assert position == len(expected)
    page.mouse.move(0, 0)
    expect(details).to_be_hidden()
    # The keyboard reaches the same details: the answer is one tab stop, the arrow keys move between tokens.
    page.locator("#ask form button[type=submit]").focus()
    page.keyboard.press("Tab")
    expect(spans.first).to_be_focused()
    expect(details).to_be_visible()
    expect(spans.first).to_have_attribute("aria-describedby", "token-details-alpha")
    assert details.inner_text() == hovered[0]
    page.keyboard.press("ArrowRight")
    expect(spans.nth(1)).to_be_focused()
    assert details.inner_text() == hovered[1]
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()
    page.keyboard.press("End")
    expect(spans.last).to_be_focused()
    expect(spans.last).to_have_attribute("tabindex", "0")
    expect(details).to_be_visible()
    shoot(page, shots / "tokens.png")
    # An adapter with no version published is not served by the chat API (no fallback): its error, as it says it.
    refused = httpx.post(f"{system.gateway.url}/v1/chat/completions", headers=key(system), json={
        "model": "sft", "messages": [{"role": "user", "content": "Question: Who?"}]})
    assert refused.status_code == 404
    for choice in page.locator(".choices input").all():
        choice.set_checked(choice.get_attribute("value") == "sft")
    page.locator("#ask form button[type=submit]").click()
    expect(column(page, "sft")).to_have_attribute("data-state", "error", timeout=ANSWER_TIMEOUT_MS)
    expect(column(page, "sft").locator(".state")).to_have_text(
        f"model_not_found: {refused.json()['error']['message']}")
    # Unchecked, the ask goes the native way again, as plain text.
    page.locator("#ask-token-probabilities").uncheck()
    ask_only(page, "alpha")
    expect(alpha.locator('[data-field="path"]')).to_have_text("/generate_with_llm/stream")
    expect(alpha.locator(".answer .token")).to_have_count(0)
    expect(alpha.locator(".answer")).to_contain_text("That is a great question.")


def test_a_cut_event_stream_is_shown_as_cut_and_the_job_can_be_cancelled(context, system):
    """A gateway whose trainer routes time out after 3 s cuts the events of a long job mid-stream."""
    addresses = {name: service.address for name, service in system.services.items()}
    with start_gateway(route_timeouts={"trainer": 3}, **addresses) as short:
        page = context.new_page()
        page.goto(f"{short.url}/playground")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
        page.locator("#api-key").fill(system.token)  # this gateway checks no keys: one sent is not looked at
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
