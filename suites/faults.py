"""Faults, each provoked for real on loopback, with what the system must do about it:

  llm killed (SIGKILL) under load, under make run's supervisor: while it is down Envoy answers 503 with a Status
    body, never hangs; the supervisor has it back and serving within 10 s.
  trainer killed in a job's first second (at several moments) and mid-training: the job's worker dies with it; the
    restarted trainer marks the job failed with the reason; published adapters stay byte for byte; a new job then
    runs and succeeds.
  a corrupt adapter version published, and a half-written one: skipped with the reason in /llm/status, never
    loaded; the previous version keeps serving.
  an unwritable adapter location: the job fails naming it; nothing published is lost.
  a 200 ms deadline on a long generation: DEADLINE_EXCEEDED (504 over REST) within 0.5 s after it.

    python suites/faults.py [--quick]     (--quick: fewer kill moments; CI runs it)

Prints each scenario's figures and exits 1 if any expectation fails.
"""
import argparse
import hashlib
import json
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import httpx
from textgen.v1 import llm_pb2, llm_pb2_grpc, trainer_pb2, trainer_pb2_grpc

from devtools.models import RANDOM_DEEP_GPT2, RANDOM_GPT2, build_tiny_model
from devtools.processes import base_env, free_port, poll, start_gateway, start_service
from services.common import adapters
from textgen.paths import ROOT, SHIPPED_CORPUS, SQUAD_SAMPLE

SMALL_SFT = trainer_pb2.TrainSftRequest(max_examples=8, num_train_epochs=1, max_length=96, lora_r=4)
LONG_SFT = trainer_pb2.TrainSftRequest(max_examples=100000, num_train_epochs=20, max_length=96)
results: list[tuple[str, bool, str]] = []


def expect(scenario: str, ok: bool, figures: str) -> None:
    results.append((scenario, ok, figures))
    print(f"{'ok  ' if ok else 'FAIL'} {scenario}: {figures}", flush=True)


def published(models_dir: pathlib.Path) -> dict[str, str]:
    """sha256 of every published file: the CURRENT pointers and the version folders (not staging folders)."""
    root = adapters.adapters_root(models_dir)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def processes_with(text: str) -> list[int]:
    found = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def llm_killed_under_load(models: pathlib.Path, tmp: pathlib.Path) -> None:
    ports = {f"{name}_PORT": str(free_port()) for name in ("BASELINE", "RNN", "LLM", "TRAINER", "GATEWAY")}
    env = base_env({**ports, "GATEWAY_ADMIN_PORT": str(free_port()), "MODELS_DIR": str(models),
                    "LLM_BASE_MODEL": str(models / RANDOM_GPT2), "CORPUS": str(SHIPPED_CORPUS),
                    "LLM_TORCH_THREADS": "1", "RESTART_BACKOFF_SECONDS": "0.5"})
    log = tmp / "launch.log"
    supervisor = subprocess.Popen([sys.executable, "-m", "launch"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(log, "w"))
    url = f"http://127.0.0.1:{ports['GATEWAY_PORT']}/generate_with_llm"
    body = {"question": "Who came?", "context": "The ship came.", "max_new_tokens": 8}

    def answer() -> httpx.Response | None:
        try:
            return httpx.post(url, json=body, timeout=10)
        except httpx.HTTPError:
            return None

    try:
        up = poll(lambda: (r := answer()) is not None and r.status_code == 200, 90)
        pid = int(re.findall(r"started llm \(pid (\d+)\)", log.read_text())[-1])
        outcomes, stop = [], threading.Event()

        def load() -> None:
            while not stop.is_set():
                started = time.monotonic()
                response = answer()
                outcomes.append((time.monotonic(), time.monotonic() - started,
                                 None if response is None else response.status_code,
                                 None if response is None else response.text))

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(1)
        killed_at = time.monotonic()
        subprocess.run(["kill", "-9", str(pid)], check=True)
        back = poll(lambda: any(t > killed_at and code == 200 for t, _, code, _ in outcomes[-3:]) and
                    time.monotonic(), 30)
        stop.set()
        worker.join()
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
    down = [(seconds, code, text) for t, seconds, code, text in outcomes if t > killed_at and code != 200]
    proper = all(code == 503 and json.loads(text)["code"] == 14 for _, code, text in down)
    recovery = (back - killed_at) if back else float("inf")
    slowest = max((seconds for seconds, _, _ in down), default=0.0)
    expect("llm killed under load", bool(up) and proper and slowest < 2 and recovery <= 10,
           f"{len(down)} requests while it was down, all 503 Status JSON: {proper}, slowest {slowest:.2f} s; "
           f"serving again {recovery:.1f} s after the kill")


def trainer_killed(models: pathlib.Path, moments: list[float]) -> None:
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2),
           "SQUAD_DATASET": str(SQUAD_SAMPLE), "TRAINER_TORCH_THREADS": "1",
           "TRAINER_EVAL_EXAMPLES": "2", "TRAINER_EVAL_MAX_NEW_TOKENS": "8", "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    before = published(models)
    for moment in moments:
        with start_service("services.trainer", env, "TRAINER_PORT") as trainer, \
                grpc.insecure_channel(trainer.address) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            job = stub.TrainSft(LONG_SFT)
            if moment < 0:  # mid-training: once progress shows steps
                poll(lambda: stub.GetJob(trainer_pb2.GetJobRequest(job_id=job.job_id)).progress.total_steps, 120)
            else:
                time.sleep(moment)
            trainer.proc.send_signal(signal.SIGKILL)
            trainer.proc.wait()
        gone = poll(lambda: not processes_with(job.job_id), 10)
        with start_service("services.trainer", env, "TRAINER_PORT") as restarted, \
                grpc.insecure_channel(restarted.address) as channel:
            after = trainer_pb2_grpc.TrainerServiceStub(channel).GetJob(trainer_pb2.GetJobRequest(job_id=job.job_id))
        when = "mid-training" if moment < 0 else f"{moment:.2f} s into the job"
        expect(f"trainer killed {when}", bool(gone) and after.status == "failed" and "stopped" in after.error
               and published(models) == before,
               f"worker gone: {bool(gone)}; job {after.status}: {after.error[:80]!r}; published adapters "
               f"unchanged: {published(models) == before}")
    with start_service("services.trainer", env, "TRAINER_PORT") as trainer, \
            grpc.insecure_channel(trainer.address) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        job = stub.TrainSft(SMALL_SFT)
        final = list(stub.WatchJob(trainer_pb2.WatchJobRequest(job_id=job.job_id), timeout=300))[-1]
    expect("a new job after the kills", final.status == "succeeded", f"{final.status}: {final.message[:80]!r}")


def broken_adapters(models: pathlib.Path) -> None:
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2), "LLM_TORCH_THREADS": "1"}
    serving = adapters.current_version(models, "sft")
    with start_service("services.llm", env, "LLM_PORT") as llm, grpc.insecure_channel(llm.address) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        root = adapters.adapter_dir(models, "sft")
        half = root / ".staging-half-written"  # a publish that died before its rename: never pointed at
        half.mkdir()
        (half / adapters.WEIGHTS).write_bytes(b"\0" * 10)
        corrupt = root / "20990101T000000000000Z"
        corrupt.mkdir()
        for name in ("adapter_config.json", adapters.BASE_RECORD):  # all but the weights as a real version has them
            (corrupt / name).write_text((root / serving / name).read_text())
        (corrupt / adapters.WEIGHTS).write_bytes(b"not a safetensors file")
        pointer = (root / adapters.POINTER).read_text()
        (root / adapters.POINTER).write_text(corrupt.name + "\n")
        status = {a.name: a for a in stub.ReloadAdapters(llm_pb2.ReloadAdaptersRequest()).adapters}["sft"]
        answer = stub.Generate(llm_pb2.LlmGenerateRequest(question="Who?", adapter="sft", max_new_tokens=4))
        (root / adapters.POINTER).write_text(pointer)
        for folder in (half, corrupt):
            for file in folder.iterdir():
                file.unlink()
            folder.rmdir()
    expect("a corrupt adapter version", "failed to load" in status.error and answer.adapter_version == serving,
           f"status: {status.error[:90]!r}; still serving {answer.adapter_version}")


def unwritable_adapters(models: pathlib.Path) -> None:
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2),
           "SQUAD_DATASET": str(SQUAD_SAMPLE), "TRAINER_TORCH_THREADS": "1",
           "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    before = published(models)
    blocker = adapters.adapter_dir(models, "rl")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the rl adapters' folder should be\n")  # as root, permissions would not stop it
    try:
        with start_service("services.trainer", env, "TRAINER_PORT") as trainer, \
                grpc.insecure_channel(trainer.address) as channel:
            stub = trainer_pb2_grpc.TrainerServiceStub(channel)
            job = stub.TrainRl(trainer_pb2.TrainRlRequest(steps=1, max_new_tokens=8))
            final = list(stub.WatchJob(trainer_pb2.WatchJobRequest(job_id=job.job_id), timeout=300))[-1]
    finally:
        blocker.unlink()
    expect("an unwritable adapter location", final.status == "failed" and "MODELS_DIR must be" in final.message
           and published(models) == before,
           f"job {final.status}: {final.message[:100]!r}; published adapters unchanged: {published(models) == before}")


def deadline(models: pathlib.Path) -> None:
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_DEEP_GPT2), "LLM_TORCH_THREADS": "1"}
    long = {"start_word": "The sea", "length": 512, "adapter": "base"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway, \
            grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        started = time.monotonic()
        try:
            llm_pb2_grpc.LlmServiceStub(channel).Generate(llm_pb2.LlmGenerateRequest(**long), timeout=0.2)
            code = "OK"
        except grpc.RpcError as error:
            code = error.code().name
        grpc_after = time.monotonic() - started - 0.2
        started = time.monotonic()
        response = httpx.post(f"{gateway.url}/generate_with_llm", json=long, headers={"grpc-timeout": "200m"},
                              timeout=30)
        rest_after = time.monotonic() - started - 0.2
    expect("a 200 ms deadline on a long generation", code == "DEADLINE_EXCEEDED" and grpc_after < 0.5 and
           response.status_code == 504 and rest_after < 0.5,
           f"gRPC via Envoy: {code} {grpc_after:.2f} s after the deadline; REST with grpc-timeout: "
           f"{response.status_code} {rest_after:.2f} s after it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two kill moments instead of five")
    args = parser.parse_args()
    moments = [0.05, 0.5] if args.quick else [0.01, 0.05, 0.2, 0.5, 1.0, -1]
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        tmp = pathlib.Path(tmp)
        models = tmp / "models"
        build_tiny_model(models / RANDOM_GPT2)
        build_tiny_model(models / RANDOM_DEEP_GPT2, n_layer=12, n_embd=768, n_head=12)
        from devtools.models import train_tiny_adapter

        train_tiny_adapter(models, "sft", steps=4)
        for scenario in (lambda: deadline(models), lambda: broken_adapters(models),
                         lambda: unwritable_adapters(models), lambda: trainer_killed(models, moments),
                         lambda: llm_killed_under_load(models, tmp)):
            scenario()
    failed = [name for name, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)} of {len(results)} expectations held" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
