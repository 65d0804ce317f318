"""The trainer service: training jobs on one queue with records that survive restarts (the seed's SFT and RL, and
OpenAI's fine-tuning jobs on the caller's uploaded files), and the adapters they publish. Its rooms: `servicers/`
(the gRPC APIs), `jobs/` (the job store, the runner and its worker processes), `files/` (the uploaded files),
`training/` (the training pipeline, no gRPC)."""
import asyncio
import logging

from textgen.v1 import adapters_pb2, adapters_pb2_grpc, files_pb2, files_pb2_grpc, fine_tuning_pb2, \
    fine_tuning_pb2_grpc, trainer_pb2, trainer_pb2_grpc

from services.common.server import Binding, GrpcServer
from services.trainer.config import TrainerConfig
from services.trainer.database import Database, OffLoop
from services.trainer.decisions import decided
from services.trainer.files.store import FileStore
from services.trainer.jobs.file_check import FileCheck
from services.trainer.jobs.runner import JobRunner, log_dir_under
from services.trainer.jobs.store import JobStore
from services.trainer.servicers.adapters import AdapterServicer
from services.trainer.servicers.files import FileServicer
from services.trainer.servicers.fine_tuning import FineTuningServicer
from services.trainer.servicers.jobs import TrainerServicer

log = logging.getLogger("textgen.trainer")


def _binding(module, grpc_module, name: str, servicer) -> Binding:
    return Binding(module.DESCRIPTOR.services_by_name[name], getattr(grpc_module, f"add_{name}Servicer_to_server"),
                   servicer)


async def serve(config: TrainerConfig) -> None:
    placement = await asyncio.to_thread(config.placement)  # an unusable TRAINER_DEVICE/_DTYPE exits here
    config = await asyncio.to_thread(decided, config)  # every job trains on what is decided here
    log.info("jobs will train on", extra={"placement": placement.describe(), "base_model": config.base_model,
                                          "squad_dataset": config.squad_dataset})
    database = await asyncio.to_thread(Database.under, config.models_dir)
    jobs, files = JobStore(database), await asyncio.to_thread(FileStore.under, config.models_dir)
    cleaned = await asyncio.to_thread(files.clean)
    if cleaned:
        log.warning("uploads cut short by a stop removed", extra={"files": cleaned})
    store = OffLoop(jobs)
    server = None

    async def runner_died(error: BaseException) -> None:
        await server.set_serving(False, f"the job runner stopped ({type(error).__name__}: {error}); restart the "
                                        "trainer to run queued jobs")

    runner = JobRunner(store, log_dir_under(config.models_dir), on_death=runner_died,
                       environment={"LLM_BASE_MODEL": config.base_model, "SQUAD_DATASET": config.squad_dataset})
    await runner.recover()
    checks = FileCheck(jobs, files, runner.wake)
    file_servicer = FileServicer(config, files)
    server = GrpcServer(config, [
        _binding(trainer_pb2, trainer_pb2_grpc, "TrainerService", TrainerServicer(config, store, runner)),
        _binding(adapters_pb2, adapters_pb2_grpc, "AdapterService", AdapterServicer(config, store)),
        _binding(files_pb2, files_pb2_grpc, "FileService", file_servicer),
        _binding(fine_tuning_pb2, fine_tuning_pb2_grpc, "FineTuningService",
                 FineTuningServicer(config, store, file_servicer, runner, checks)),
    ])

    async def startup() -> None:
        runner.start()
        runner.wake()  # jobs queued before a restart run now
        await checks.resume()  # and those still validating their files carry on

    try:
        await server.run(ready=True, startup=startup)
    finally:
        await runner.shutdown()
