"""The end of every training run: evaluate the staged adapter, publish it atomically, tell the llm service."""
import dataclasses
import logging
import pathlib
from collections.abc import Callable

from services.common import adapters
from services.trainer.training.context import TrainingContext
from services.trainer.training.data import load_squad
from services.trainer.training.progress import Progress, Report
from services.trainer.training.reports import write_json

log = logging.getLogger("textgen.trainer")

Publish = Callable[[TrainingContext, str, pathlib.Path], str]
RELOAD_TIMEOUT_SECONDS = 10


def evaluate_staged(model, tokenizer, context: TrainingContext, staged: pathlib.Path, report: Report,
                    progress: Progress) -> dict:
    from services.trainer.training.evaluation import evaluate_model

    report(dataclasses.replace(progress, message=f"evaluating on {context.eval_examples} validation questions"))
    examples = load_squad(context.squad_dataset, "validation", limit=context.eval_examples)
    result = evaluate_model(model, tokenizer, examples, context.eval_max_new_tokens)
    summary = {**result.summary(), "samples": result.samples}
    write_json(staged / adapters.EVALUATION, summary)
    log.info("evaluation", extra=result.summary())
    return summary


def notify_llm(llm_addr: str) -> bool:
    """Best effort: the llm service also notices a moved CURRENT pointer on its own."""
    import grpc
    from textgen.v1 import llm_pb2, llm_pb2_grpc

    try:
        with grpc.insecure_channel(llm_addr) as channel:
            llm_pb2_grpc.LlmServiceStub(channel).ReloadAdapters(llm_pb2.ReloadAdaptersRequest(),
                                                                 timeout=RELOAD_TIMEOUT_SECONDS)
        log.info("llm service reloaded its adapters", extra={"llm_addr": llm_addr})
        return True
    except grpc.RpcError as error:
        log.warning("llm service not told to reload; it will notice the new CURRENT pointer itself",
                    extra={"llm_addr": llm_addr, "code": error.code().name, "details": error.details()})
        return False


def publish_and_notify(context: TrainingContext, name: str, staged: pathlib.Path) -> str:
    version = adapters.publish(context.models_dir, name, staged)
    log.info("adapter published", extra={"adapter": name, "version": version})
    notify_llm(context.llm_addr)
    return version
