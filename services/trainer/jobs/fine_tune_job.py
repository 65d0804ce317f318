"""What a fine-tuning job (OpenAI's API) adds to the worker's course: its step, from the job's record (the uploaded
files' contents, the fine-tuned model it continues), and its results when it publishes: the metrics CSV as a file of
the job's owner (purpose fine-tune-results) and the tokens it trained on, recorded with the publish itself."""
import dataclasses
import json
import pathlib
import shutil

from services.common import adapters
from services.trainer.files.store import RESULTS, FileStore, insert
from services.trainer.jobs.store import JobRecord


@dataclasses.dataclass
class Results:
    """A publishing job's results, staged before the publish and recorded inside its transaction."""
    trained_tokens: int | None = None
    files: list = dataclasses.field(default_factory=list)  # FileRecords whose content is in place

    def record(self, db) -> None:
        for record in self.files:
            insert(db, record)

    def discard(self, files: FileStore) -> None:
        """When the job did not publish after all (it was cancelled meanwhile)."""
        for record in self.files:
            files.content_path(record.id).unlink(missing_ok=True)


def fine_tune_step(job: JobRecord, models_dir: pathlib.Path):
    """The training step of the job's method."""
    from services.trainer.training import fine_tune_params as methods

    params = methods.FineTuneParams(**job.params)
    files = FileStore.under(models_dir)
    from_path = None
    if params.from_adapter:
        from_path = adapters.current_path(models_dir, params.from_adapter)
        if from_path is None:
            raise ValueError(f"model {params.model!r} has no version published any more; nothing to continue")
    training = files.content_path(params.training_file)
    validation = files.content_path(params.validation_file) if params.validation_file else None
    if params.method == methods.DPO:
        from services.trainer.training.dpo import DpoStep

        return DpoStep(params, training, validation, from_path, job.owner)
    if params.method == methods.REINFORCEMENT:
        from services.trainer.training.reinforcement import ReinforcementStep

        return ReinforcementStep(params, training, validation, from_path, job.owner)
    from services.trainer.training.fine_tune import FineTuneStep

    return FineTuneStep(params, training, validation, from_path, job.owner)


def staged_results(job: JobRecord, staged: pathlib.Path, models_dir: pathlib.Path) -> Results:
    """For a fine-tuning job, its metrics file placed in the file store (not yet recorded) and its trained tokens;
    nothing for the other kinds."""
    from services.trainer.training.pipeline import METRICS_FILE

    if job.kind != "fine_tune":
        return Results()
    files = FileStore.under(models_dir)
    copy = files.staging_path()
    shutil.copyfile(staged / METRICS_FILE, copy)
    record = files.placed(copy, job.owner, f"{job.id}-metrics.csv", RESULTS, examples=0, job_id=job.id)
    recorded = json.loads((staged / "params.json").read_text())
    return Results(trained_tokens=recorded.get("trained_tokens"), files=[record])
