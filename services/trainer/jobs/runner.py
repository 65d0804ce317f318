"""Runs queued jobs one at a time, each in its own `services.trainer.jobs.worker` process, so training never blocks the
gRPC server's event loop and a cancel can kill it outright. If the runner itself dies, it says so through
`on_death` (the server then reports NOT_SERVING): queued jobs would otherwise wait for ever in silence."""
import asyncio
import logging
import os
import pathlib
import sys
from collections.abc import Awaitable, Callable

from services.common import adapters
from services.trainer.database import OffLoop, trainer_dir
from services.trainer.jobs.store import CANCELLED, FAILED, RUNNING, SUCCEEDED, JobRecord

log = logging.getLogger("textgen.trainer.runner")
KILL_GRACE_SECONDS = 5
LOG_TAIL_CHARS = 600


def log_dir_under(models_dir: pathlib.Path) -> pathlib.Path:
    """Where the runner writes each job's log (the worker process's output), one file a job."""
    return trainer_dir(models_dir) / "logs"


def _tail(path: pathlib.Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL_CHARS:].strip()


class JobRunner:
    def __init__(self, store: OffLoop, log_dir: pathlib.Path,
                 on_death: Callable[[BaseException], Awaitable[None]], environment: dict[str, str] | None = None) -> None:
        self.store = store
        self.environment = {**os.environ, **(environment or {})}  # each job's worker process gets this
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.on_death = on_death
        self._wake = asyncio.Event()
        self._current: tuple[str, asyncio.subprocess.Process] | None = None
        self._task: asyncio.Task | None = None

    async def recover(self) -> None:
        """At start-up, before serving: jobs the dead trainer was running failed, and their half-written staging
        folders go. Queued jobs stay queued and run now."""
        reason = "the trainer stopped while this job was running (found at restart); nothing was published"
        for job in await self.store.fail_interrupted(reason):
            log.warning("job failed by restart", extra={"job_id": job.id})
            if job.staging:
                adapters.discard(pathlib.Path(job.staging))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="job-runner")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("the job runner stopped; no queued job will start", exc_info=error)
        asyncio.get_running_loop().create_task(self.on_death(error))

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            job = await self.store.next_queued()
            if job is None:
                await self._wake.wait()
                self._wake.clear()
                continue
            if await self.store.start(job.id):
                try:
                    await self._run(job)
                except Exception:  # the loop must survive anything one job does
                    log.exception("runner error", extra={"job_id": job.id})
                    await self.store.finish(job.id, FAILED, error="internal error starting the training process",
                                            error_code="training_failed")

    async def _run(self, job: JobRecord) -> None:
        log_path = self.log_dir / f"{job.id}.log"
        with open(log_path, "wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.trainer.jobs.worker", job.id, str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
                env=self.environment)
        self._current = (job.id, process)
        await self.store.set_pid(job.id, process.pid)
        log.info("job started", extra={"job_id": job.id, "kind": job.kind, "pid": process.pid})
        try:
            code = await process.wait()
        finally:
            self._current = None
        after = await self.store.finish(job.id, FAILED, only_if=(RUNNING,),
                                        error=f"the training process exited with code {code}: {_tail(log_path)}",
                                        error_code="training_failed")
        if after and after.status != SUCCEEDED and after.staging:
            adapters.discard(pathlib.Path(after.staging))
        log.info("job ended", extra={"job_id": job.id, "status": after and after.status, "exit_code": code})

    async def cancel(self, job_id: str) -> JobRecord | None:
        """Cancels a queued or running job (killing its process); a finished job is returned unchanged."""
        job = await self.store.finish(job_id, CANCELLED)
        current = self._current
        if job and job.status == CANCELLED and current and current[0] == job_id:
            await self._stop(current[1])
        return job

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    async def shutdown(self) -> None:
        """SIGTERM: the running job is failed with that reason (it cannot resume), queued ones wait for restart."""
        if self._task:
            self._task.cancel()
        current = self._current
        if current:
            job_id, process = current
            await self.store.finish(job_id, FAILED, only_if=(RUNNING,),
                                    error="the trainer was shut down while this job was running; nothing was "
                                          "published", error_code="trainer_stopped")
            await self._stop(process)
            job = await self.store.get(job_id)
            if job and job.staging:
                adapters.discard(pathlib.Path(job.staging))
