"""FineTuningService: OpenAI's fine-tuning jobs on the trainer's one job queue. A job is created validating its
files (services/trainer/jobs/file_check.py), then runs as every job runs (the runner, a worker process, cancel,
restarts), and publishes its fine_tuned_model as an adapter of the caller's, which the llm service serves at once."""
import asyncio
import dataclasses
import logging
import time

import grpc
from google.protobuf import json_format, struct_pb2
from textgen.v1 import fine_tuning_pb2, fine_tuning_pb2_grpc

from services.common import adapters
from services.common.callers import caller, sees, visible_to
from services.common.errors import shown
from services.common.openai_errors import OpenAiError, aborting, invalid, not_found
from services.trainer.config import TrainerConfig
from services.trainer.database import OffLoop
from services.trainer.files.store import FINE_TUNE as FILE_PURPOSE
from services.trainer.jobs.file_check import FileCheck, checked_for
from services.trainer.jobs.runner import JobRunner
from services.trainer.jobs.events import JobEvent, event_id, event_seq
from services.trainer.jobs.store import FINE_TUNE, VALIDATING, JobRecord, new_job_id
from services.trainer.servicers.files import FileServicer
from services.trainer.servicers.fine_tuning_request import read_request
from services.trainer.training.fine_tune_params import DPO, REINFORCEMENT, SUPERVISED, FineTuneParams
from services.trainer.training.llm_reload import notify_llm
from textgen.openai_error_body import MODEL_NOT_FOUND

log = logging.getLogger("textgen.trainer")
HYPERPARAMETER_TYPES = {SUPERVISED: fine_tuning_pb2.SupervisedHyperparameters, DPO: fine_tuning_pb2.DpoHyperparameters,
                        REINFORCEMENT: fine_tuning_pb2.ReinforcementHyperparameters}


def _hyperparameters(params: FineTuneParams):
    """The method's hyperparameters as OpenAI shows them: "auto" until the files are validated."""
    values = {name: struct_pb2.Value(string_value="auto") if value is None else struct_pb2.Value(number_value=value)
              for name, value in params.shown_hyperparameters().items()}
    if params.method == REINFORCEMENT:
        values["skip_uniform_groups"] = params.skip_uniform_groups
    return HYPERPARAMETER_TYPES[params.method](**values)


def _method(params: FineTuneParams) -> fine_tuning_pb2.FineTuningMethod:
    method = fine_tuning_pb2.FineTuningMethod(type=params.method)
    section = getattr(method, params.method)
    section.hyperparameters.CopyFrom(_hyperparameters(params))
    if params.method == REINFORCEMENT:
        section.grader.update(params.grader)
    return method


def job_object(job: JobRecord, result_files: list[str]) -> fine_tuning_pb2.FineTuningJob:
    """The job as OpenAI's API shows it."""
    params, read = job.params, FineTuneParams(**job.params)
    message = fine_tuning_pb2.FineTuningJob(
        id=job.id, object="fine_tuning.job", created_at=int(job.created_at), model=params["model"],
        organization_id="textgen", result_files=result_files, seed=params["seed"], status=job.status,
        training_file=params["training_file"], validation_file=params["validation_file"] or None,
        metadata=params["metadata"], user_provided_suffix=params["suffix"], method=_method(read))
    if read.method == SUPERVISED:  # OpenAI's older place for them, a supervised job's only
        message.hyperparameters.CopyFrom(_hyperparameters(read))
    if job.status == "succeeded":
        message.fine_tuned_model = params["adapter"]
        if job.trained_tokens is not None:
            message.trained_tokens = job.trained_tokens
    if job.finished_at is not None:
        message.finished_at = int(job.finished_at)
    if job.status == "running" and job.eta_seconds is not None:
        message.estimated_finish = int(time.time() + job.eta_seconds)
    if job.status == "failed":
        param = {"invalid_training_file": "training_file", "invalid_validation_file": "validation_file"}
        message.error.CopyFrom(fine_tuning_pb2.FineTuningJobError(
            code=job.error_code or "training_failed", message=job.error, param=param.get(job.error_code)))
    return message


def event_object(event: JobEvent) -> fine_tuning_pb2.FineTuningJobEvent:
    data = json_format.ParseDict(event.data, struct_pb2.Struct()) if event.data else None
    return fine_tuning_pb2.FineTuningJobEvent(id=event_id(event), object="fine_tuning.job.event",
                                              created_at=int(event.created_at), level=event.level,
                                              message=event.message, type=event.type, data=data)


class FineTuningServicer(fine_tuning_pb2_grpc.FineTuningServiceServicer):
    def __init__(self, config: TrainerConfig, jobs: OffLoop, files: FileServicer, runner: JobRunner,
                 checks: FileCheck) -> None:
        self.config, self.jobs, self.files, self.runner, self.checks = config, jobs, files, runner, checks
        self.base_name = config.base().name

    async def _object(self, job: JobRecord) -> fine_tuning_pb2.FineTuningJob:
        return job_object(job, await self.files.store.of_job(job.id))

    async def _owned(self, job_id: str, context) -> JobRecord:
        job = await self.jobs.get(job_id) if job_id else None
        if job is None or job.kind != FINE_TUNE or not sees(caller(context), job.owner):
            raise not_found(f"no fine-tuning job with id {shown(job_id)}", "fine_tuning_job_id")
        return job

    async def _starting_point(self, model: str, who: str) -> str | None:
        """The adapter `model` names to continue (None: the base model); 404 when the caller has no such model."""
        if model in (adapters.BASE, self.base_name):
            return None
        if adapters.is_valid_name(model):
            path = await asyncio.to_thread(adapters.current_path, self.config.models_dir, model)
            if path is not None and sees(who, (await asyncio.to_thread(adapters.read_serving_record, path))[0]):
                return model
        raise not_found(f"model {shown(model)} is neither the base model ({self.base_name!r}, or \"base\") nor a "
                        "fine-tuned model of yours; GET /v1/models lists them", "model", MODEL_NOT_FOUND)

    async def _file(self, file_id: str, param: str, params: FineTuneParams, context) -> None:
        """404 unless the caller's; 400 unless a fine-tuning file in the format of the job's method."""
        record = await self.files.owned(file_id, context, param)
        if record.purpose != FILE_PURPOSE:
            raise invalid(f"{param} {record.id} has purpose {record.purpose}; a fine-tuning job trains on files "
                          f"uploaded with purpose {FILE_PURPOSE}", param)
        checked = await asyncio.to_thread(checked_for, self.files.files.content_path(record.id), params)
        if checked.problems:
            raise invalid(f"{param} {record.id} is not valid data for a {params.method} job: {checked.summary()}",
                          param, code="invalid_file_format")

    async def CreateFineTuningJob(self, request, context):
        async with aborting(context):
            who, job_id = caller(context), new_job_id(FINE_TUNE)
            params = read_request(request, job_id)
            params = dataclasses.replace(params, from_adapter=await self._starting_point(params.model, who))
            await self._file(params.training_file, "training_file", params, context)
            if params.validation_file:
                await self._file(params.validation_file, "validation_file", params, context)
            job = await self.jobs.create_if_room(FINE_TUNE, dataclasses.asdict(params), self.config.max_queued, who,
                                                 VALIDATING, job_id)
            if job is None:
                raise OpenAiError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{self.config.max_queued} jobs are already "
                                  "waiting (TRAINER_MAX_QUEUED); retry when one has started", code="rate_limit_exceeded")
            log.info("fine-tuning job created", extra={"job_id": job.id, "model": params.model})
            self.checks.start(job.id)
            return await self._object(job)

    async def ListFineTuningJobs(self, request, context):
        async with aborting(context):
            limit = request.limit if request.HasField("limit") else 20
            if not 1 <= limit <= 100:
                raise invalid(f"limit must be between 1 and 100 (got {limit})", "limit")
            if request.after:
                await self._owned(request.after, context)
            jobs, more = await self.jobs.page(FINE_TUNE, visible_to(caller(context)), request.after, limit)
            return fine_tuning_pb2.FineTuningJobList(object="list", data=[await self._object(j) for j in jobs],
                                                     has_more=more)

    async def GetFineTuningJob(self, request, context):
        async with aborting(context):
            return await self._object(await self._owned(request.fine_tuning_job_id, context))

    async def CancelFineTuningJob(self, request, context):
        async with aborting(context):
            job = await self._owned(request.fine_tuning_job_id, context)
            return await self._object(await self.runner.cancel(job.id))

    async def ListFineTuningEvents(self, request, context):
        async with aborting(context):
            job = await self._owned(request.fine_tuning_job_id, context)
            limit = request.limit if request.HasField("limit") else 20
            if not 1 <= limit <= 1000:
                raise invalid(f"limit must be between 1 and 1000 (got {limit})", "limit")
            if request.after and event_seq(request.after) is None:
                raise invalid(f"after must be an event id of this job (got {shown(request.after)})", "after")
            events, more = await self.jobs.events(job.id, request.after, limit)
            return fine_tuning_pb2.FineTuningJobEventList(object="list", data=[event_object(e) for e in events],
                                                          has_more=more)

    async def DeleteModel(self, request, context):
        async with aborting(context):
            name = request.model
            if name in (adapters.BASE, self.base_name):
                raise invalid("the base model cannot be deleted; only fine-tuned models can", "model")
            await self._starting_point(name, caller(context))  # 404 unless the caller's
            busy = [job for job in await self.jobs.all() if not job.finished
                    and name in (job.adapter, job.params.get("from_adapter"))]
            if busy:
                raise OpenAiError(grpc.StatusCode.ABORTED, f"job {busy[0].id} has not ended and trains "
                                  f"{'into' if busy[0].adapter == name else 'from'} model {name!r}: cancel it "
                                  "first or let it end", param="model")
            await asyncio.to_thread(adapters.remove_adapter, self.config.models_dir, name)
            log.info("model deleted", extra={"model": name})
            await asyncio.to_thread(notify_llm, self.config.llm_addr)
            return fine_tuning_pb2.ModelDeleted(id=name, object="model", deleted=True)
