"""`textgen fine-tune create --method dpo|reinforcement` (the venv's console script) through real Envoy to the trainer
on the tiny random GPT-2: each flag lands in method.<method>.hyperparameters of the job the API returns (read back
with the official `openai` client), the grader read from a file, --watch printing each step's figures with the
method's headline first; and a flag of another method, or reinforcement without a grader, refused as a usage error
before anything is sent."""
import json
import pathlib
import re
import subprocess
import sys

from devtools.processes import base_env
from tests.fine_tuning_service import (client, gateway, llm, models_dir, preference_lines,  # noqa: F401
                                       prompt_lines, trainer)

TEXTGEN = pathlib.Path(sys.executable).parent / "textgen"
EXACT = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
         "operation": "eq"}


def textgen(gateway, *args: str) -> subprocess.CompletedProcess:
    env = base_env({"TRAINER_ADDR": gateway.address})  # raw gRPC through Envoy, as test_cli.py's calls
    return subprocess.run([str(TEXTGEN), *args], env=env, capture_output=True, text=True, timeout=600)


def metrics_lines(stdout: str) -> list[str]:
    return [line.split(None, 1)[1] for line in stdout.splitlines() if re.match(r"info +Step \d+/\d+: ", line)]


def test_dpo_flags_reach_the_job_and_watch_prints_loss_then_margin_and_accuracy(gateway, client, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(preference_lines(12))
    created = textgen(gateway, "fine-tune", "create", "--training-file", str(pairs), "--method", "dpo",
                      "--beta", "0.25", "--n-epochs", "1", "--batch-size", "4", "--learning-rate-multiplier", "2",
                      "--suffix", "cli-dpo", "--watch")
    assert created.returncode == 0, created.stdout + created.stderr
    last = created.stdout.strip().splitlines()[-1]
    assert " succeeded (base -> ft-cli-dpo-" in last
    job = client.fine_tuning.jobs.retrieve(last.split()[0])
    assert job.method.type == "dpo"
    shown = job.method.dpo.hyperparameters
    assert (shown.beta, shown.n_epochs, shown.batch_size, shown.learning_rate_multiplier) == (0.25, 1, 4, 2)
    steps = [line for line in metrics_lines(created.stdout) if ": train_loss " in line]
    assert [line.split(":")[0] for line in steps] == ["Step 1/3", "Step 2/3", "Step 3/3"]  # 12 pairs, 4 a step
    for line in steps:
        names = [figure.split()[0] for figure in line.split(": ", 1)[1].split(", ")]
        assert names[:3] == ["train_loss", "train_reward_margin", "train_reward_accuracy"], line


def test_reinforcement_flags_and_a_grader_file_reach_the_job_and_watch_prints_the_reward_first(
        gateway, client, tmp_path):
    prompts, grader = tmp_path / "prompts.jsonl", tmp_path / "grader.json"
    prompts.write_bytes(prompt_lines(12))
    grader.write_text(json.dumps(EXACT))
    created = textgen(gateway, "fine-tune", "create", "--training-file", str(prompts), "--method", "reinforcement",
                      "--grader", f"@{grader}", "--n-epochs", "1", "--batch-size", "2", "--compute-multiplier",
                      "0.25", "--temperature", "0.7", "--max-completion-tokens", "8", "--skip-uniform-groups",
                      "--eval-interval", "3", "--eval-samples", "4", "--watch")
    assert created.returncode == 0, created.stdout + created.stderr
    job = client.fine_tuning.jobs.retrieve(created.stdout.strip().splitlines()[-1].split()[0])
    assert job.method.type == "reinforcement" and job.status == "succeeded"
    assert (job.method.reinforcement.grader.type, job.method.reinforcement.grader.name) == ("string_check", "exact")
    shown = job.method.reinforcement.hyperparameters
    assert (shown.n_epochs, shown.batch_size, shown.compute_multiplier, shown.temperature,
            shown.max_completion_tokens, shown.skip_uniform_groups) == (1, 2, 0.25, 0.7, 8, True)
    assert (shown.eval_interval, shown.eval_samples) == (3, 4)
    steps = [line for line in metrics_lines(created.stdout) if ": reward " in line]
    assert [line.split(":")[0] for line in steps] == [f"Step {i}/6" for i in range(1, 7)], created.stdout  # 2 a step
    for line in steps:
        names = [figure.split()[0] for figure in line.split(": ", 1)[1].split(", ")]
        assert names[0] == "reward" and {"grader_exact", "skipped_prompts", "trained_flat"} <= set(names), line


def test_an_inline_grader_is_sent_as_given(gateway, client, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(prompt_lines(10))
    similar = {"type": "text_similarity", "name": "close", "input": "{{sample.output_text}}",
               "reference": "{{item.answer}}", "evaluation_metric": "fuzzy_match"}
    created = textgen(gateway, "fine-tune", "create", "--training-file", str(prompts), "--method", "reinforcement",
                      "--grader", json.dumps(similar), "--max-completion-tokens", "8", "--compute-multiplier", "0.25")
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.strip().splitlines()[-1].split()[0]
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.method.type == "reinforcement"
    assert job.method.reinforcement.grader.model_dump(exclude_none=True) == similar
    shown = job.method.reinforcement.hyperparameters
    assert (shown.max_completion_tokens, shown.compute_multiplier, shown.skip_uniform_groups) == (8, 0.25, False)
    assert client.fine_tuning.jobs.cancel(job_id).status == "cancelled"  # not needed further


def test_a_flag_of_another_method_or_a_missing_or_bad_grader_is_a_usage_error(gateway, client, tmp_path):
    jobs_before = len(client.fine_tuning.jobs.list(limit=100).data)
    refusals = {
        ("--beta", "0.2"): "--beta is a dpo job's flag (--method dpo); this job's method is supervised",
        ("--method", "dpo", "--temperature", "0.5"):
            "--temperature is a reinforcement job's flag (--method reinforcement); this job's method is dpo",
        ("--method", "dpo", "--skip-uniform-groups"):
            "--skip-uniform-groups is a reinforcement job's flag (--method reinforcement); this job's method is dpo",
        ("--method", "supervised", "--compute-multiplier", "1"):
            "--compute-multiplier is a reinforcement job's flag (--method reinforcement); this job's method is "
            "supervised",
        ("--grader", json.dumps(EXACT)):
            "--grader is a reinforcement job's flag (--method reinforcement); this job's method is supervised",
        ("--method", "reinforcement"):
            "--method reinforcement takes --grader: OpenAI's grader object as JSON, inline or @path",
        ("--method", "reinforcement", "--grader", "[1, 2]"): "--grader takes a JSON object (got list)",
        ("--method", "reinforcement", "--grader", f"@{tmp_path / 'missing.json'}"):
            f"--grader @{tmp_path / 'missing.json'}: no such file",
    }
    for flags, said in refusals.items():
        refused = textgen(gateway, "fine-tune", "create", "--training-file", "file-0", *flags)
        assert refused.returncode == 2 and refused.stdout == "", flags
        assert refused.stderr.strip().splitlines()[-1] == f"textgen: error: {said}", flags
    bad_json = textgen(gateway, "fine-tune", "create", "--training-file", "file-0", "--method", "reinforcement",
                       "--grader", "{type: string_check}")
    assert bad_json.returncode == 2 and "textgen: error: --grader is not JSON: " in bad_json.stderr
    assert len(client.fine_tuning.jobs.list(limit=100).data) == jobs_before  # nothing was sent
