"""TrainerService: the seed's training calls (/llm/train_sft, /llm/train_rl) and every job's record, the fine-tuning
API's jobs among them (GET /llm/jobs lists what the caller may see: everyone's jobs and its own)."""
import asyncio
import dataclasses
import logging
import pathlib

import grpc
from google.protobuf import timestamp_pb2
from textgen.v1 import trainer_pb2, trainer_pb2_grpc

from services.common import adapters
from services.common.callers import caller, sees
from services.common.errors import Violations, shown
from services.common.limits import from_request, out_of_range
from services.trainer.config import TrainerConfig
from services.trainer.database import OffLoop
from services.trainer.jobs.runner import JobRunner
from services.trainer.jobs.store import FINE_TUNE, JobRecord
from services.trainer.servicers.adapters import evaluation_of
from services.trainer.training.params import RlParams, SftParams, refused

log = logging.getLogger("textgen.trainer")
WATCH_POLL_SECONDS = 0.25
_FINE_TUNE_FIELDS = set(trainer_pb2.FineTuneParams.DESCRIPTOR.fields_by_name)


def _timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _progress(job: JobRecord) -> trainer_pb2.JobProgress:
    return trainer_pb2.JobProgress(step=job.step, total_steps=job.total_steps, loss=job.loss, reward=job.reward,
                                   eta_seconds=job.eta_seconds)


def _params(job: JobRecord) -> trainer_pb2.JobParams:
    if job.kind == FINE_TUNE:
        shown_params = {k: v for k, v in job.params.items() if k in _FINE_TUNE_FIELDS and v is not None
                        and k != "grader"}
        params = trainer_pb2.FineTuneParams(**shown_params)
        if job.params.get("grader"):
            params.grader.update(job.params["grader"])
        return trainer_pb2.JobParams(fine_tune=params)
    if job.kind == "sft":
        return trainer_pb2.JobParams(sft=trainer_pb2.TrainSftRequest(**job.params))
    return trainer_pb2.JobParams(rl=trainer_pb2.TrainRlRequest(**job.params))


def job_message(job: JobRecord, models_dir: pathlib.Path) -> trainer_pb2.Job:
    return trainer_pb2.Job(job_id=job.id, kind=job.kind, adapter=job.adapter, status=job.status,
                           progress=_progress(job), params=_params(job),
                           adapter_version=job.adapter_version, error=job.error, device=job.device,
                           base_model=job.base_model,
                           evaluation=evaluation_of(models_dir, job.adapter, job.adapter_version),
                           created_at=_timestamp(job.created_at), started_at=_timestamp(job.started_at),
                           finished_at=_timestamp(job.finished_at))


async def _checked(request, params_type, context):
    """The request as a params dataclass, each unset field taking its documented default; out-of-range values end
    the call with INVALID_ARGUMENT naming each field."""
    params = from_request(params_type, request)
    violations = Violations()
    violations.add_all(out_of_range(params))
    violations.add_all(refused(params))
    await violations.abort_if_any(context)
    return params


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, config: TrainerConfig, store: OffLoop, runner: JobRunner) -> None:
        self.config = config
        self.store = store
        self.runner = runner

    async def _enqueue(self, kind: str, params, context) -> trainer_pb2.Job:
        job = await self.store.create_if_room(kind, dataclasses.asdict(params), self.config.max_queued)
        if job is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"{self.config.max_queued} jobs are already queued (TRAINER_MAX_QUEUED); "
                                "retry when one has started")
        log.info("job queued", extra={"job_id": job.id, "kind": kind, "params": params})
        self.runner.wake()
        return job_message(job, self.config.models_dir)

    async def TrainSft(self, request: trainer_pb2.TrainSftRequest, context):
        return await self._enqueue("sft", await _checked(request, SftParams, context), context)

    async def TrainRl(self, request: trainer_pb2.TrainRlRequest, context):
        params = await _checked(request, RlParams, context)
        if adapters.current_path(self.config.models_dir, params.from_adapter) is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"from_adapter {params.from_adapter!r} has no version published: run SFT first "
                                f"(POST /llm/train_sft with \"adapter\": \"{params.from_adapter}\"), then RL")
        return await self._enqueue("rl", params, context)

    async def ListJobs(self, request, context):
        who = caller(context)
        jobs = [job for job in await self.store.all() if sees(who, job.owner)]
        # Each succeeded job's evaluation is a small file read: off the event loop, like the store's reads.
        return trainer_pb2.ListJobsResponse(jobs=await asyncio.to_thread(
            lambda: [job_message(job, self.config.models_dir) for job in jobs]))

    async def _job_or_404(self, job_id: str, context) -> JobRecord:
        job = await self.store.get(job_id) if job_id else None
        if job is None or not sees(caller(context), job.owner):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job with job_id {shown(job_id)}")
        return job

    async def GetJob(self, request, context):
        return job_message(await self._job_or_404(request.job_id, context), self.config.models_dir)

    async def CancelJob(self, request, context):
        await self._job_or_404(request.job_id, context)
        job = await self.runner.cancel(request.job_id)
        return job_message(job, self.config.models_dir)

    async def WatchJob(self, request, context):
        job = await self._job_or_404(request.job_id, context)
        last = None
        while True:
            state = (job.status, job.step, job.total_steps, job.loss, job.reward, job.message)
            if state != last:
                last = state
                yield trainer_pb2.JobEvent(job_id=job.id, status=job.status, progress=_progress(job),
                                           time=_timestamp(job.finished_at if job.finished else None)
                                           or _now(), message=job.error or job.message)
            if job.finished:
                return
            await asyncio.sleep(WATCH_POLL_SECONDS)
            job = await self.store.get(job.id)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
