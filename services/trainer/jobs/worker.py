"""One training job in its own process: `python -m services.trainer.jobs.worker JOB_ID TRAINER_PID` (started by the
runner).

Reads the job from the store, trains, writes progress back, and publishes only while the job is still running.
Dies with the trainer that started it, whenever that dies, even in the job's first instant: a trainer killed
mid-job must not leave a process that publishes behind its back. The restarted trainer marks the job failed."""
import logging
import pathlib
import sys

from services.common import adapters
from services.common.devices import Placement
from services.common.logs import setup_logging
from services.trainer.config import TrainerConfig
from services.trainer.files.store import FileStore
from services.trainer.jobs.fine_tune_job import fine_tune_step, staged_results
from services.trainer.jobs.store import FAILED, FINE_TUNE, RUNNING, JobRecord, JobStore
from services.common.lifetime import die_with_parent

log = logging.getLogger("textgen.trainer.worker")


class JobNoLongerRunning(RuntimeError):
    """The job was cancelled (or failed by a restart) before it could publish."""


def run(job_id: str, config: TrainerConfig, placement: Placement) -> int:
    """Trains the job in this process: the whole job, or, under data-parallel training, this process's part of it
    (only the first process writes progress, publishes and records a failure)."""
    from services.trainer.training import distributed, pipeline
    from services.trainer.decisions import training_context
    from services.trainer.training.context import TrainingContext
    from services.trainer.training.progress import Progress
    from services.trainer.training.publishing import publish_and_notify

    store = JobStore.under(config.models_dir)
    job = store.get(job_id)
    if job is None or job.status != RUNNING:
        log.error("job is not running", extra={"job_id": job_id, "status": job and job.status})
        return 1
    context = training_context(config, placement)  # the trainer decided the base model and data set
    main = distributed.is_main()
    if main:
        processes = f" x {config.processes} processes" if config.processes > 1 else ""
        store.set_trained_on(job_id, placement.describe() + processes, context.base.name)

    def report(progress: Progress) -> None:
        store.update_progress(job_id, progress.step, progress.total_steps, progress.loss, progress.reward,
                              progress.eta_seconds, progress.message, progress.metrics)
        if progress.note_level:
            store.note(job_id, progress.message, progress.note_level)

    def publish(context: TrainingContext, name: str, staged: pathlib.Path) -> str:
        # The llm service is told inside the lock too, so that "succeeded" means it already serves the new version
        # (when it is reachable); the reload call is bounded by RELOAD_TIMEOUT_SECONDS.
        results = staged_results(job, staged, config.models_dir)
        version = store.publish_if_running(job_id, lambda: publish_and_notify(context, name, staged),
                                           results.trained_tokens, results.record)
        if version is None:
            results.discard(FileStore.under(config.models_dir))
            raise JobNoLongerRunning(f"job {job_id} is no longer running; nothing published")
        return version

    staged: list[pathlib.Path] = []

    def on_staged(path: pathlib.Path) -> None:
        staged.append(path)
        store.set_staging(job_id, path)

    try:
        version = pipeline.train(_step(job, config.models_dir), context, report, publish=publish,
                                 on_staged=on_staged)
        if main:
            log.info("job succeeded", extra={"job_id": job_id, "adapter_version": version})
        return 0
    except JobNoLongerRunning as error:
        log.info(str(error))
        return 0
    except Exception as error:
        log.exception("job failed", extra={"job_id": job_id})
        if main:
            store.finish(job_id, FAILED, error=str(error) or type(error).__name__, only_if=(RUNNING,),
                         error_code="training_failed")
        return 1
    finally:
        for path in staged:
            if path.exists():
                adapters.discard(path)


def _step(job: JobRecord, models_dir: pathlib.Path):
    """The job's training step: SFT, RL or fine-tuning with the job's params."""
    if job.kind == FINE_TUNE:
        return fine_tune_step(job, models_dir)
    if job.kind == "sft":
        from services.trainer.training.params import SftParams
        from services.trainer.training.sft import SftStep

        return SftStep(SftParams(**job.params))
    from services.trainer.training.params import RlParams
    from services.trainer.training.rl import RlStep

    return RlStep(RlParams(**job.params))


def run_process(job_id: str, config: TrainerConfig) -> None:
    """One of TRAINER_PROCESSES data-parallel processes (started by `distributed.spawn`)."""
    setup_logging(config.log_level)
    code = run(job_id, config, config.prepare_torch())
    if code:
        raise SystemExit(code)


def run_data_parallel(job_id: str, config: TrainerConfig) -> int:
    from services.trainer.training import distributed

    try:
        distributed.spawn(config.processes, run_process, (job_id, config))
        return 0
    except Exception as error:  # a process that failed; the first one has recorded its own failure already
        log.error("data-parallel training failed", extra={"job_id": job_id, "error": str(error)[:500]})
        JobStore.under(config.models_dir).finish(job_id, FAILED, only_if=(RUNNING,),
                                                 error=f"a training process failed: {str(error)[-300:]}")
        return 1


def main() -> None:
    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        sys.exit(__doc__)
    die_with_parent(int(sys.argv[2]))
    config = TrainerConfig.from_env()
    setup_logging(config.log_level)
    if config.processes > 1:
        sys.exit(run_data_parallel(sys.argv[1], config))
    sys.exit(run(sys.argv[1], config, config.prepare_torch()))


if __name__ == "__main__":
    main()
