"""A fine-tuning job's first status, validating_files: its files are read once more (each was checked when it was
uploaded; this finds one changed or gone since), the "auto" hyperparameters are chosen from the training file's
size, and the job goes to the queue, or fails with OpenAI's invalid_training_file or invalid_validation_file. Runs
beside the queue, never behind a job that trains; at start-up it resumes the jobs a stopped trainer left in it."""
import asyncio
import dataclasses
import logging
from collections.abc import Callable

from services.common.callers import sees
from services.trainer.files.store import FINE_TUNE, FileStore
from services.trainer.jobs.store import FAILED, VALIDATING, JobRecord, JobStore
from services.trainer.training import graders
from services.trainer.training.file_formats import Checked, check_file
from services.trainer.training.fine_tune_params import REINFORCEMENT, FineTuneParams

log = logging.getLogger("textgen.trainer")


def checked_for(path, params: FineTuneParams) -> Checked:
    """The file checked in the format of the job's method; a reinforcement job's lines must also hold every field its
    grader reads."""
    def grader_fields(value: dict) -> str | None:
        field = graders.missing_field(grader, value)
        return None if field is None else (f"the grader reads {{{{item.{field}}}}}, which this line does not hold "
                                           f"(method.reinforcement.grader)")

    if params.method != REINFORCEMENT:
        return check_file(path, params.method)
    grader = graders.read_grader(params.grader)
    return check_file(path, params.method, grader_fields)


class FileCheck:
    def __init__(self, jobs: JobStore, files: FileStore, on_queued: Callable[[], None]) -> None:
        self.jobs, self.files, self.on_queued = jobs, files, on_queued
        self._tasks: set[asyncio.Task] = set()

    def start(self, job_id: str) -> None:
        task = asyncio.create_task(self._run(job_id), name=f"validate-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> None:
        for job in await asyncio.to_thread(self.jobs.jobs_in, VALIDATING):
            self.start(job.id)

    async def _run(self, job_id: str) -> None:
        try:
            queued = await asyncio.to_thread(self.validate, job_id)
        except Exception:  # the job must not stay validating for ever
            log.exception("validating a job's files failed", extra={"job_id": job_id})
            await asyncio.to_thread(self.jobs.finish, job_id, FAILED, "internal error validating the files",
                                    (VALIDATING,), "invalid_training_file")
            return
        if queued:
            self.on_queued()

    def _problem(self, job: JobRecord, params: FineTuneParams, file_id: str) -> tuple[str, int]:
        """(what is wrong with the file, "" when nothing; the examples it holds)."""
        record = self.files.get(file_id)
        if record is None or not sees(job.owner, record.owner):
            return f"file {file_id} no longer exists", 0
        if record.purpose != FINE_TUNE:
            return f"file {file_id} has purpose {record.purpose}, not {FINE_TUNE}", 0
        checked = checked_for(self.files.content_path(file_id), params)
        if checked.problems:
            return f"file {file_id} is not valid {params.method} fine-tuning data: {checked.summary()}", 0
        return "", checked.examples

    def validate(self, job_id: str) -> bool:
        """Whether the job went to the queue."""
        job = self.jobs.get(job_id)
        if job is None or job.status != VALIDATING:
            return False
        params = FineTuneParams(**job.params)
        problem, examples = self._problem(job, params, params.training_file)
        code = "invalid_training_file"
        if not problem and params.validation_file:
            problem, _ = self._problem(job, params, params.validation_file)
            code = "invalid_validation_file"
        if problem:
            self.jobs.finish(job_id, FAILED, problem, (VALIDATING,), code)
            return False
        chosen = params.resolved(examples)
        shown = ", ".join(f"{name} {value:g}" for name, value in chosen.shown_hyperparameters().items())
        note = f"{examples} training examples ({chosen.method}): {shown}"
        after = self.jobs.validated(job_id, dataclasses.asdict(chosen), note)
        return after is not None and after.status != VALIDATING
