"""The one course every training run takes: load, stage, train in a scratch folder, save the adapter, write
params.json, the base and serving records, the curve and the metrics, evaluate, publish. SFT on SQuAD, SFT on a
user's chat examples and RL differ only in their `TrainingStep`.

Under data-parallel training every process loads and trains and takes part in saving; only the first one has a
staging folder, and it alone writes the rest and publishes."""
import dataclasses
import pathlib
import tempfile
from collections.abc import Callable
from typing import Protocol

from services.common import adapters
from services.common.devices import Placement
from services.trainer.training import distributed
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import load_squad
from services.trainer.training.progress import ProgressCallback, Report, no_report
from services.trainer.training.publishing import Publish, evaluate_staged, publish_and_notify
from services.trainer.training.reports import write_curve, write_json, write_metrics_csv

METRICS_FILE = "metrics.csv"  # each step's logged figures, in every published version


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What a step loaded, before anything is staged: a run that cannot start leaves nothing behind."""
    model: object
    tokenizer: object
    rows: list[dict]
    base_fingerprint: str  # taken before training, which changes a few of the model's settings
    record: dict  # what params.json says beyond the step's params and the base model's name
    curve_title: str
    eval_rows: list[dict] | None = None  # measured after every epoch (a fine-tuning job's validation file)


class TrainingStep(Protocol):
    kind: str  # "sft", "rl" or "fine_tune"
    name: str  # the adapter it publishes a version of (its params' adapter)
    metric: str  # the logged value kept as its curve: "loss" or "reward"
    curve_extras: tuple[str, ...]  # other logged values each point of the curve keeps
    params: object  # its params dataclass, written into params.json
    owner: str  # whose adapter it is (services/common/callers.py): '' for everyone's
    chat: bool  # served as a chat model only (trained on chat examples), never in the QA form
    evaluates_squad: bool  # evaluated on SQuAD's validation questions before publishing

    def load(self, context: TrainingContext, report: Report) -> Loaded:
        """The model to train, its tokenizer and rows; raises when there is nothing to train on."""

    def trainer(self, loaded: Loaded, output_dir: str, placement: Placement, show_progress: bool, callbacks: list):
        """The trl trainer, writing into `output_dir`."""


def train(step: TrainingStep, context: TrainingContext, report: Report = no_report, show_progress: bool = False,
          publish: Publish = publish_and_notify,
          on_staged: Callable[[pathlib.Path], None] = lambda path: None, eval_points: int = 0) -> str | None:
    """Trains, writes adapter + params.json + base and serving records + curve + metrics.csv (+ eval.json) into a
    staging folder, then `publish`es it. Returns the published version (None in the processes other than the first). `eval_points` > 0:
    also evaluates that many times while training (eval_curve.EvalCurve) and writes f1_curve.json."""
    loaded = step.load(context, report)
    staged = distributed.staging_on_main(context.models_dir, step.name, on_staged)
    main = staged is not None
    progress = ProgressCallback(report if main else no_report, step.metric, step.curve_extras)
    callbacks = [progress]
    f1_curve = None
    if eval_points and main:
        from services.trainer.training.eval_curve import EvalCurve

        examples = load_squad(context.squad_dataset, "validation", limit=context.eval_examples)
        f1_curve = EvalCurve(loaded.tokenizer, examples, context.eval_max_new_tokens, eval_points,
                             context.placement.dtype)
        callbacks.append(f1_curve)
    with tempfile.TemporaryDirectory(prefix=f"{step.name}-") as scratch:
        trainer = step.trainer(loaded, scratch, context.placement, show_progress and main, callbacks)
        trainer.train()
        trainer.save_model(str(staged or scratch))  # every process takes part; only the first writes
    if not main:
        return None
    # Tokens trained on: the non-padding tokens of every batch (SFT, DPO: both answers), or GRPO's prompts and sampled
    # answers; trl and transformers count them on every process.
    trained_tokens = trainer.state.num_input_tokens_seen or None
    write_json(staged / "params.json", {"kind": step.kind, **dataclasses.asdict(step.params),
                                        "base_model": context.base.name, "trained_tokens": trained_tokens,
                                        **loaded.record})
    adapters.write_base_record(staged, context.base.name, loaded.base_fingerprint)
    adapters.write_serving_record(staged, owner=step.owner, chat=step.chat)
    write_curve(staged, progress.curve, step.metric, loaded.curve_title)
    write_metrics_csv(staged / METRICS_FILE, progress.metrics)
    if not step.evaluates_squad:
        return publish(context, step.name, staged)
    evaluation = evaluate_staged(trainer.model, loaded.tokenizer, context, staged, report, progress.progress)
    if f1_curve is not None:
        f1_curve.add_final(trainer.args, trainer.state.global_step, evaluation)
        write_json(staged / "f1_curve.json", f1_curve.curve)
    return publish(context, step.name, staged)
