"""The llm service's pure parts: the answer format while streaming, context trimming, and which adapter folders
the adapter catalog accepts."""
import pytest

from services.common import adapters
from services.common.prompts import SUFFIX, fit_context, qa_prompt
from services.llm import answer_format
from services.llm.catalog import published_version


@pytest.mark.parametrize(("body", "final", "completed"), [
    (" Paris. Let me know if you have any other questions.", " Paris. " + SUFFIX, False),
    (" Paris. Let me know if you have any other questions.\n\nQuestion:", " Paris. " + SUFFIX, False),
    (" Paris. Let me know if", " Paris. " + SUFFIX, True),
    (" Paris.  \n", " Paris. " + SUFFIX, True),
    ("", " " + SUFFIX, True),
])
def test_the_body_is_cut_at_the_suffix_or_completed(body, final, completed):
    assert answer_format.complete(body) == (final, completed)


def test_text_that_may_become_the_suffix_is_held_back_and_what_was_sent_is_never_taken_back():
    body = " Paris. Let me know if you have any other questions."
    sent = 0
    for end in range(1, len(body)):  # until the suffix is complete (then decoding cuts there instead)
        safe = answer_format.safe_length(body[:end])
        sent = max(sent, safe)
    assert body[:sent] == " Paris."
    assert answer_format.safe_length(" caf\ufffd") == len(" caf")
    for end in range(1, len(body) + 1):
        final, _ = answer_format.complete(body[:end])
        assert final.startswith(body[:answer_format.safe_length(body[:end])])


def test_the_context_is_trimmed_from_the_far_end_to_fit():
    context = " ".join(f"w{i}" for i in range(100))
    fits = lambda prompt: len(prompt.split()) <= 30  # noqa: E731
    trimmed = fit_context("Why?", context, fits)
    assert context.endswith(trimmed) and fits(qa_prompt("Why?", trimmed))
    assert not fits(qa_prompt("Why?", " ".join(context.split()[-len(trimmed.split()) - 1:])))
    assert fit_context("Why?", "short", fits) == "short"
    assert fit_context("Why? " * 40, context, fits) is None


def test_only_safetensors_adapters_inside_models_dir_trained_on_this_base_are_accepted(tmp_path):
    def published(base_fingerprint: str = "abc"):
        return published_version(tmp_path, "sft", base_fingerprint)

    assert published().error == "no version published"
    root = adapters.adapter_dir(tmp_path, "sft")
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "adapter_model.bin").write_bytes(b"pickle")
    (root / adapters.POINTER).write_text("v1\n")
    assert published().path is None and "safetensors" in published().error
    (root / adapters.POINTER).write_text("../../elsewhere\n")
    assert published().path is None and "invalid adapter version" in published().error
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "adapter_model.safetensors").write_bytes(b"")
    (root / "v2").symlink_to(outside, target_is_directory=True)
    (root / adapters.POINTER).write_text("v2\n")
    assert published().path is None and "outside" in published().error
    (root / "v3").mkdir()
    (root / "v3" / "adapter_model.safetensors").write_bytes(b"")
    (root / adapters.POINTER).write_text("v3\n")
    assert published().path is None and "does not record the base model" in published().error
    adapters.write_base_record(root / "v3", "some base", "abc")
    assert published().path == root / "v3" and published().base_model == "some base"
    refused = published("xyz")
    assert refused.path is None and refused.base_model == "some base"
    assert "trained on base model some base" in refused.error
