"""The `textgen` command (the venv's console script) against live services: generation, QA and streaming, a
training job followed to its end with --watch through a gateway that checks API keys (TEXTGEN_API_KEY), jobs,
cancel, status, and one-line errors with exit code 1."""
import pathlib
import subprocess
import sys

import pytest

from devtools.models import RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import base_env, free_port, start_gateway, start_service
from tests.fine_tuning_service import chat_lines
from textgen.paths import SQUAD_SAMPLE

TEXTGEN = pathlib.Path(sys.executable).parent / "textgen"
KEYS = [{"name": "coach", "key": "coach-key-0123456789", "scopes": ["train"]},
        {"name": "watcher", "key": "watcher-key-0123456789", "scopes": ["read"]}]
SMALL_SFT = ["--max-examples", "8", "--num-train-epochs", "1", "--max-length", "96", "--lora-r", "4"]


@pytest.fixture(scope="module")
def system(corpus_file, tmp_path_factory):
    models_dir = random_models_dir(tmp_path_factory.mktemp("cli-models"))
    train_tiny_adapter(models_dir, "sft", steps=20)
    common = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2)}
    with start_service("services.baseline", {**common, "CORPUS": str(corpus_file)}, "BASELINE_PORT") as baseline, \
            start_service("services.llm", {**common, "LLM_TORCH_THREADS": "1"}, "LLM_PORT") as llm, \
            start_service("services.trainer", {**common, "SQUAD_DATASET": str(SQUAD_SAMPLE), "LLM_ADDR": llm.address,
                                               "TRAINER_EVAL_EXAMPLES": "2",
                                               "TRAINER_EVAL_MAX_NEW_TOKENS": "8", "TRAINER_TORCH_THREADS": "1"},
                          "TRAINER_PORT") as trainer, \
            start_gateway(api_keys=KEYS, trainer=trainer.address) as gateway:
        # Nothing listens at the rnn address: the status table and an rnn call must say so.
        yield {"BASELINE_ADDR": baseline.address, "LLM_ADDR": llm.address, "TRAINER_ADDR": trainer.address,
               "RNN_ADDR": f"127.0.0.1:{free_port()}", "GATEWAY": gateway.address}


def textgen(system, *args: str, api_key: str = "", through_gateway: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in system.items() if k != "GATEWAY"}
    if through_gateway:  # the trainer's calls go through Envoy, as raw gRPC
        env["TRAINER_ADDR"] = system["GATEWAY"]
    env = base_env({**env, "TEXTGEN_API_KEY": api_key})
    return subprocess.run([str(TEXTGEN), *args], env=env, capture_output=True, text=True, timeout=300)


def test_generate_and_a_one_line_error(system):
    done = textgen(system, "generate", "bigram", "the", "-n", "4", "--seed", "1")
    assert done.returncode == 0 and done.stdout.startswith("the ") and len(done.stdout.split()) <= 4
    bad = textgen(system, "generate", "bigram", "the", "-n", "0")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"textgen: baseline at {system['BASELINE_ADDR']}: INVALID_ARGUMENT: length must be between 1 and 1000 (got 0)"]
    down = textgen(system, "generate", "rnn", "the")
    assert down.returncode == 1 and "rnn at" in down.stderr and "UNAVAILABLE" in down.stderr
    assert "Traceback" not in bad.stderr + down.stderr


def test_ask_and_stream_give_the_same_greedy_answer(system):
    asked = textgen(system, "ask", "Who came into the harbour?", "--context", "The ship came into the harbour.",
                    "--adapter", "sft", "--max-new-tokens", "20")
    streamed = textgen(system, "stream", "Who came into the harbour?", "--context",
                       "The ship came into the harbour.", "--adapter", "sft", "--max-new-tokens", "20")
    assert asked.returncode == streamed.returncode == 0, asked.stderr + streamed.stderr
    assert asked.stdout == streamed.stdout and asked.stdout.startswith("That is a great question.")
    assert "(sft " in asked.stderr
    text_mode = textgen(system, "ask", "--text", "The ship", "-n", "6", "--adapter", "base")
    assert text_mode.returncode == 0 and text_mode.stdout.startswith("That is a great question. The ship")
    assert textgen(system, "ask").returncode == 2  # neither a question nor --text


def test_train_with_watch_follows_the_job_to_its_end_then_jobs_lists_it(system):
    refused = textgen(system, "train", "sft", *SMALL_SFT, through_gateway=True)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    forbidden = textgen(system, "train", "sft", *SMALL_SFT, through_gateway=True, api_key=KEYS[1]["key"])
    assert forbidden.returncode == 1 and "PERMISSION_DENIED" in forbidden.stderr
    trained = textgen(system, "train", "sft", *SMALL_SFT, "--watch", through_gateway=True, api_key=KEYS[0]["key"])
    assert trained.returncode == 0, trained.stderr
    job_id = trained.stdout.split()[1]
    assert f"job {job_id} succeeded: published sft adapter version" in trained.stdout
    assert "step" in trained.stderr  # tqdm draws the bar on stderr
    listed = textgen(system, "jobs", through_gateway=True, api_key=KEYS[1]["key"])
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith(job_id))
    assert "sft" in row and "succeeded" in row


def test_cancel_and_status(system):
    queued = textgen(system, "train", "sft", "--max-examples", "100000", "--num-train-epochs", "20")
    job_id = queued.stdout.split()[1]
    cancelled = textgen(system, "cancel", job_id)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"job {job_id} cancelled"
    watched = textgen(system, "watch", job_id)
    assert watched.returncode == 1 and f"job {job_id} cancelled" in watched.stdout
    status = textgen(system, "status")
    assert status.returncode == 1  # the rnn service is down
    lines = status.stdout.splitlines()
    assert any(line.startswith("baseline") and line.endswith("SERVING") for line in lines)
    assert any(line.startswith("rnn") and line.endswith("UNAVAILABLE") for line in lines)
    assert any(line.startswith("base model:") and f"{RANDOM_GPT2} (loaded)" in line for line in lines)
    assert any(line.startswith("sft") and " yes" in line for line in lines)


def test_files_and_fine_tune_take_a_local_file_to_a_fine_tuned_model(system, tmp_path):
    examples = tmp_path / "examples.jsonl"
    examples.write_bytes(chat_lines(12))
    coach = {"through_gateway": True, "api_key": KEYS[0]["key"]}
    created = textgen(system, "fine-tune", "create", "--training-file", str(examples), "--suffix", "cli",
                      "--n-epochs", "1", "--batch-size", "4", "--watch", **coach)
    assert created.returncode == 0, created.stderr
    uploaded = created.stdout.splitlines()[0]
    assert uploaded.startswith(f"uploaded {examples} as file-")
    last = created.stdout.strip().splitlines()[-1]
    assert " succeeded (base -> ft-cli-" in last and "Step 3/3" in created.stdout
    job_id, file_id = last.split()[0], uploaded.split()[-1]
    listed = textgen(system, "fine-tune", **coach)
    assert listed.returncode == 0 and any(line.startswith(job_id) for line in listed.stdout.splitlines())
    content = textgen(system, "files", "content", file_id, **coach)
    assert content.returncode == 0 and content.stdout.encode() == chat_lines(12)
    refused = textgen(system, "files", "upload", str(tmp_path / "missing.jsonl"), **coach)
    assert refused.returncode == 1 and "missing.jsonl" in refused.stderr and "Traceback" not in refused.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n" * 12)
    invalid = textgen(system, "files", "upload", str(bad), **coach)
    assert invalid.returncode == 1 and "line 1: messages must be a non-empty list" in invalid.stderr
    deleted = textgen(system, "files", "delete", file_id, **coach)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted {file_id}"
    assert textgen(system, "fine-tune", "show", **coach).returncode == 2  # show takes a job id
