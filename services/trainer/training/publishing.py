"""The end of every training run: evaluate the staged adapter, publish it atomically, tell the llm service."""
import dataclasses
import logging
import pathlib
from collections.abc import Callable

from services.common import adapters
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import load_squad
from services.trainer.training.progress import Progress, Report
from services.trainer.training.llm_reload import notify_llm
from services.trainer.training.reports import write_json

log = logging.getLogger("textgen.trainer")

Publish = Callable[[TrainingContext, str, pathlib.Path], str]


def evaluate_staged(model, tokenizer, context: TrainingContext, staged: pathlib.Path, report: Report,
                    progress: Progress) -> dict:
    from services.trainer.training.evaluation import evaluate_model

    report(dataclasses.replace(progress, message=f"evaluating on {context.eval_examples} validation questions"))
    examples = load_squad(context.squad_dataset, "validation", limit=context.eval_examples)
    result = evaluate_model(model, tokenizer, examples, context.eval_max_new_tokens,
                            autocast_dtype=context.placement.dtype)
    summary = {**result.summary(), "samples": result.samples}
    write_json(staged / adapters.EVALUATION, summary)
    log.info("evaluation", extra=result.summary())
    return summary


def publish_and_notify(context: TrainingContext, name: str, staged: pathlib.Path) -> str:
    version = adapters.publish(context.models_dir, name, staged)
    log.info("adapter published", extra={"adapter": name, "version": version})
    pruned = adapters.prune(context.models_dir, name, max(1, context.keep_versions))
    if pruned:
        log.info("old adapter versions deleted (TRAINER_KEEP_VERSIONS)", extra={"adapter": name, "versions": pruned})
    notify_llm(context.llm_addr)
    return version
