"""The trainer service: SFT and RL training as queued jobs, with records that survive restarts."""
import asyncio
import dataclasses
import hmac
import logging

import grpc
from google.protobuf import timestamp_pb2
from textgen.v1 import trainer_pb2, trainer_pb2_grpc

from services.common import adapters
from services.common.errors import Violations
from services.common.server import Binding, GrpcServer
from services.trainer.config import TrainerConfig
from services.trainer.jobs import JobRecord, JobStore
from services.trainer.params import RL_RANGES, SFT_RANGES, RlParams, SftParams, out_of_range
from services.trainer.runner import JobRunner

log = logging.getLogger("textgen.trainer")
WATCH_POLL_SECONDS = 0.25


def _timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _progress(job: JobRecord) -> trainer_pb2.JobProgress:
    return trainer_pb2.JobProgress(step=job.step, total_steps=job.total_steps, loss=job.loss, reward=job.reward,
                                   eta_seconds=job.eta_seconds)


def job_message(job: JobRecord) -> trainer_pb2.Job:
    params = (trainer_pb2.JobParams(sft=trainer_pb2.TrainSftRequest(**job.params)) if job.kind == "sft"
              else trainer_pb2.JobParams(rl=trainer_pb2.TrainRlRequest(**job.params)))
    return trainer_pb2.Job(job_id=job.id, kind=job.kind, status=job.status, progress=_progress(job), params=params,
                           adapter_version=job.adapter_version, error=job.error,
                           created_at=_timestamp(job.created_at), started_at=_timestamp(job.started_at),
                           finished_at=_timestamp(job.finished_at))


def _with_defaults(request, defaults) -> dict:
    """The request's fields, each unset one taking the dataclass default (the documented defaults)."""
    values = dataclasses.asdict(defaults)
    for name in values:
        if request.HasField(name):
            values[name] = getattr(request, name)
    return values


async def _reject_out_of_range(params: dict, ranges: dict, context) -> None:
    violations = Violations()
    for field, description in out_of_range(params, ranges):
        violations.add(field, description)
    await violations.abort_if_any(context)


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, config: TrainerConfig, store: JobStore, runner: JobRunner) -> None:
        self.config = config
        self.store = store
        self.runner = runner

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        if not self.config.token:
            return
        metadata = dict(context.invocation_metadata() or ())
        expected = f"Bearer {self.config.token}"
        if not hmac.compare_digest(metadata.get("authorization", "").encode(), expected.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "training and cancelling need 'authorization: Bearer <TRAINER_TOKEN>'")

    async def _enqueue(self, kind: str, params: dict, context) -> trainer_pb2.Job:
        # Writes may wait for the training process's lock (held while it publishes): off the event loop.
        job = await asyncio.to_thread(self.store.create_if_room, kind, params, self.config.max_queued)
        if job is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"{self.config.max_queued} jobs are already queued (TRAINER_MAX_QUEUED); "
                                "retry when one has started")
        log.info("job queued", extra={"job_id": job.id, "kind": kind, "params": params})
        self.runner.wake()
        return job_message(job)

    async def TrainSft(self, request: trainer_pb2.TrainSftRequest, context):
        await self._authorize(context)
        params = _with_defaults(request, SftParams())
        await _reject_out_of_range(params, SFT_RANGES, context)
        return await self._enqueue("sft", params, context)

    async def TrainRl(self, request: trainer_pb2.TrainRlRequest, context):
        await self._authorize(context)
        params = _with_defaults(request, RlParams())
        await _reject_out_of_range(params, RL_RANGES, context)
        if adapters.current_path(self.config.models_dir, "sft") is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "no SFT adapter is published: run SFT first (POST /llm/train_sft), then RL")
        return await self._enqueue("rl", params, context)

    async def ListJobs(self, request, context):
        return trainer_pb2.ListJobsResponse(jobs=[job_message(job) for job in self.store.all()])

    async def _job_or_404(self, job_id: str, context) -> JobRecord:
        job = self.store.get(job_id) if job_id else None
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job with job_id {job_id!r}")
        return job

    async def GetJob(self, request, context):
        return job_message(await self._job_or_404(request.job_id, context))

    async def CancelJob(self, request, context):
        await self._authorize(context)
        await self._job_or_404(request.job_id, context)
        job = await self.runner.cancel(request.job_id)
        return job_message(job)

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
            job = self.store.get(job.id)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


async def serve(config: TrainerConfig) -> None:
    store = JobStore.under(config.models_dir)
    runner = JobRunner(store, config.models_dir / "trainer" / "logs")
    runner.recover()
    server = GrpcServer(config, [Binding(trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"],
                                         trainer_pb2_grpc.add_TrainerServiceServicer_to_server,
                                         TrainerServicer(config, store, runner))])

    async def startup() -> None:
        runner.start()
        runner.wake()  # jobs queued before a restart run now

    try:
        await server.run(ready=True, startup=startup)
    finally:
        await runner.shutdown()
