"""AdapterService: the published adapters and their versions (MODELS_DIR/adapters, services/common/adapters.py),
listed with each version's job and evaluation, switched (roll back or forward) and deleted. The trainer serves it
because the trainer publishes: one writer of the adapters' folders. After a switch or a deletion the llm service is
told to reload (it would notice the moved CURRENT pointer at its next request anyway); requests it is serving with a
version keep that version in memory until they finish."""
import asyncio
import json
import logging
import pathlib

import grpc
from google.protobuf import timestamp_pb2
from textgen.v1 import adapters_pb2, adapters_pb2_grpc, trainer_pb2

from services.common import adapters
from services.common.callers import caller, sees
from services.common.errors import shown
from services.trainer.config import TrainerConfig
from services.trainer.database import OffLoop
from services.trainer.jobs.store import JobRecord
from services.trainer.training.llm_reload import notify_llm

log = logging.getLogger("textgen.trainer")


def evaluation_of(models_dir: pathlib.Path, name: str, version: str) -> trainer_pb2.JobEvaluation | None:
    """The evaluation a published version carries (its eval.json); None when it has none or it is unreadable."""
    if not version:
        return None
    try:
        summary = json.loads((adapters.version_dir(models_dir, name, version) / adapters.EVALUATION).read_text())
        return trainer_pb2.JobEvaluation(examples=summary["examples"], exact_match=summary["exact_match"],
                                         f1=summary["f1"], format_compliance=summary["both"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("a published adapter's evaluation is unreadable",
                    extra={"adapter": name, "version": version, "error": str(error)})
        return None


def describe(models_dir: pathlib.Path, name: str, jobs: list[JobRecord]) -> adapters_pb2.Adapter:
    serving = adapters.current_version(models_dir, name) or ""
    published_by = {job.adapter_version: job.id for job in jobs if job.adapter == name and job.adapter_version}
    described = []
    for version in adapters.versions(models_dir, name):
        published_at = timestamp_pb2.Timestamp()
        published_at.FromDatetime(adapters.published_at(version))
        record = adapters.read_base_record(adapters.version_dir(models_dir, name, version)) or {}
        described.append(adapters_pb2.AdapterVersion(
            version=version, published_at=published_at, serving=version == serving,
            job_id=published_by.get(version, ""), base_model=str(record.get("name", "")),
            evaluation=evaluation_of(models_dir, name, version)))
    return adapters_pb2.Adapter(name=name, serving_version=serving, versions=described)


class AdapterServicer(adapters_pb2_grpc.AdapterServiceServicer):
    def __init__(self, config: TrainerConfig, store: OffLoop) -> None:
        self.config, self.store = config, store
        self.models_dir = config.models_dir

    async def _describe(self, name: str) -> adapters_pb2.Adapter:
        jobs = await self.store.all()
        return await asyncio.to_thread(describe, self.models_dir, name, jobs)

    async def _existing(self, name: str, context) -> adapters_pb2.Adapter:
        """The adapter, or the call ends: INVALID_ARGUMENT for a name no adapter can have, NOT_FOUND for one with
        no version, or one that is another API key's."""
        if not adapters.is_valid_name(name):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"name {shown(name)} is no adapter's name")
        adapter = await self._describe(name)
        if not adapter.versions or not await asyncio.to_thread(_seen_by, caller(context), self.models_dir, name):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"adapter {name!r} has no published version; "
                                                           "GET /llm/adapters lists them")
        return adapter

    async def _with_version(self, name: str, version: str, context) -> adapters_pb2.Adapter:
        """The adapter, or the call ends as `_existing` ends it, or NOT_FOUND when it has no such version."""
        adapter = await self._existing(name, context)
        if version not in {held.version for held in adapter.versions}:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"adapter {name!r} has no version {shown(version)}; "
                                                           f"GET /llm/adapters/{name} lists its versions")
        return adapter

    async def ListAdapters(self, request, context):
        jobs, who = await self.store.all(), caller(context)
        names = [name for name in await asyncio.to_thread(_published_names, self.models_dir)
                 if await asyncio.to_thread(_seen_by, who, self.models_dir, name)]
        return adapters_pb2.ListAdaptersResponse(adapters=await asyncio.to_thread(
            lambda: [describe(self.models_dir, name, jobs) for name in names]))

    async def GetAdapter(self, request, context):
        return await self._existing(request.name, context)

    async def ServeAdapterVersion(self, request, context):
        await self._with_version(request.name, request.version, context)
        await asyncio.to_thread(adapters.point_current, self.models_dir, request.name, request.version)
        log.info("adapter version switched", extra={"adapter": request.name, "version": request.version})
        await asyncio.to_thread(notify_llm, self.config.llm_addr)
        return await self._describe(request.name)

    async def DeleteAdapterVersion(self, request, context):
        adapter = await self._with_version(request.name, request.version, context)
        if request.version == adapter.serving_version:
            await context.abort(grpc.StatusCode.ABORTED, f"version {request.version} serves adapter "
                                                         f"{request.name!r}: serve another first (POST /llm/adapters/"
                                                         f"{request.name}:serve), or delete the whole adapter")
        await asyncio.to_thread(adapters.remove_version, self.models_dir, request.name, request.version)
        log.info("adapter version deleted", extra={"adapter": request.name, "version": request.version})
        return await self._describe(request.name)

    async def DeleteAdapter(self, request, context):
        adapter = await self._existing(request.name, context)
        training = [job.id for job in await self.store.all() if job.adapter == request.name and not job.finished]
        if training:
            await context.abort(grpc.StatusCode.ABORTED, f"job {training[0]} is training into adapter "
                                                         f"{request.name!r}: cancel it first (POST /llm/jobs/"
                                                         f"{training[0]}:cancel) or let it finish")
        await asyncio.to_thread(adapters.remove_adapter, self.models_dir, request.name)
        log.info("adapter deleted", extra={"adapter": request.name})
        await asyncio.to_thread(notify_llm, self.config.llm_addr)
        return adapters_pb2.DeleteAdapterResponse(deleted_versions=[v.version for v in adapter.versions])


def _published_names(models_dir: pathlib.Path) -> list[str]:
    return [name for name in adapters.folder_names(models_dir) if adapters.versions(models_dir, name)]


def _seen_by(who: str, models_dir: pathlib.Path, name: str) -> bool:
    """Whether `who` may see the adapter: its newest version's serving record names it, or no one."""
    versions = adapters.versions(models_dir, name)
    return bool(versions) and sees(who, adapters.read_serving_record(
        adapters.version_dir(models_dir, name, versions[0]))[0])
