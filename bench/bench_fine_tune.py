"""Fine-tuning on your own data, end to end, in one command: the embedded model (SmolLM2-135M-Instruct) served by the
llm service, trained by the trainer, both behind the real gateway, driven by the official `openai` client.

    python bench/bench_fine_tune.py [--epochs 3] [--upload-mib 50]      (make embedded-model first; a quiet machine)

1. the base model's behaviour rate on data/json_replies' 50 held-out questions (the share of replies that are one
   JSON object {"topic", "answer"}: devtools/json_replies.py), greedy, through /v1/chat/completions;
2. its training file (256 chat examples) uploaded and a job of --epochs epochs run on it: the job's wall time, from
   POST /v1/fine_tuning/jobs to `succeeded` as a client polling every 0.2 s sees it;
3. the time from that `succeeded` to the fine-tuned model's first whole answer, and the same request's time again;
4. the fine-tuned model's behaviour rate on the same 50 questions;
5. a --upload-mib file (the training examples repeated) uploaded through the gateway: its time, and the trainer's
   resident memory while it receives it (sampled every 10 ms from /proc), beside the file's size.
Prints each figure with the target it is held to, and the CPU's name and flags.
"""
import argparse
import pathlib
import threading
import time

import httpx
import openai

from devtools import json_replies
from devtools.fine_tuning_system import cpu, embedded_system, greedy_replies


def behaviour(client: openai.OpenAI, model: str) -> dict:
    rows = json_replies.read_jsonl(json_replies.HELDOUT)
    replies = greedy_replies(client, model, [row["messages"] for row in rows], json_replies.HELDOUT_NEW_TOKENS)
    return {**json_replies.score((text, row["topic"]) for text, row in zip(replies, rows)), "example": replies[0]}


def first_answers(client: openai.OpenAI, model: str, succeeded: float) -> tuple[float, float]:
    """(seconds from `succeeded` to the model's first whole answer, seconds the same request takes again): what the
    first one costs beyond answering is its difference."""
    messages = json_replies.read_jsonl(json_replies.HELDOUT)[0]["messages"]
    timings = []
    for started in (succeeded, None):
        started = started or time.monotonic()
        answer = client.chat.completions.create(model=model, messages=messages, temperature=0,
                                                max_tokens=json_replies.HELDOUT_NEW_TOKENS)
        assert answer.choices[0].message.content
        timings.append(time.monotonic() - started)
    return timings[0], timings[1]


def rss_mib(pid: int) -> float:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def upload_memory(gateway_url: str, pid: int, mib: int, folder: pathlib.Path) -> dict:
    big = folder / "big.jsonl"
    lines = json_replies.TRAIN.read_bytes()
    with open(big, "wb") as out:
        while out.tell() < mib * 1024 * 1024:
            out.write(lines)
    before, peak, done = rss_mib(pid), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    with open(big, "rb") as content:
        response = httpx.post(f"{gateway_url}/v1/files", files={"file": ("big.jsonl", content)},
                              data={"purpose": "fine-tune"}, timeout=300)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    assert response.status_code == 200, response.text
    return {"file_mib": big.stat().st_size / 2**20, "seconds": seconds, "rss_before_mib": before,
            "rss_peak_mib": peak[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--upload-mib", type=int, default=50)
    args = parser.parse_args()
    print(f"CPU: {cpu()}", flush=True)
    with embedded_system() as (client, gateway, trainer, tmp):
        base = behaviour(client, "base")
        print(f"base model: behaviour rate {base['behaviour_rate']:.0%} of {base['count']} held-out questions "
              f"(target: under 10%); e.g. {base['example'][:100]!r}", flush=True)
        uploaded = client.files.create(file=json_replies.TRAIN.open("rb"), purpose="fine-tune")
        started = time.monotonic()
        job = client.fine_tuning.jobs.create(model="base", training_file=uploaded.id, suffix="json-replies",
                                             method={"type": "supervised", "supervised": {
                                                 "hyperparameters": {"n_epochs": args.epochs}}})
        while job.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.2)
            job = client.fine_tuning.jobs.retrieve(job.id)
        succeeded = time.monotonic()
        assert job.status == "succeeded", job.error
        first, again = first_answers(client, job.fine_tuned_model, succeeded)
        wall = succeeded - started
        steps = len([e for e in client.fine_tuning.jobs.list_events(job.id, limit=1000) if e.type == "metrics"])
        print(f"job: {uploaded.id} x {args.epochs} epochs (batch {job.hyperparameters.batch_size}, {steps} steps, "
              f"{job.trained_tokens} tokens) in {wall:.0f} s (target: under 600 s)", flush=True)
        print(f"first answer after succeeded: {first:.2f} s (target: within 5 s); the same request again "
              f"{again:.2f} s", flush=True)
        tuned = behaviour(client, job.fine_tuned_model)
        print(f"{job.fine_tuned_model}: behaviour rate {tuned['behaviour_rate']:.0%}, topic accuracy "
              f"{tuned['topic_accuracy']:.0%} (target: at least 90%); e.g. {tuned['example'][:120]!r}",
              flush=True)
        print(f"behaviour rate: {base['behaviour_rate']:.0%} -> {tuned['behaviour_rate']:.0%}", flush=True)
        upload = upload_memory(gateway.url, trainer.proc.pid, args.upload_mib, tmp)
        growth = upload["rss_peak_mib"] - upload["rss_before_mib"]
        print(f"upload of {upload['file_mib']:.1f} MiB: {upload['seconds']:.1f} s; trainer resident memory "
              f"{upload['rss_before_mib']:.0f} MiB before, {upload['rss_peak_mib']:.0f} MiB at most while "
              f"receiving: +{growth:.0f} MiB, {growth / upload['file_mib']:.2f}x the file (target: within 2x)")


if __name__ == "__main__":
    main()
