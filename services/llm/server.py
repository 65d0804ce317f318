"""The llm service: loads LLM_BASE_MODEL and the current adapters after the port is open (health NOT_SERVING until
then, and for good when the base model cannot be loaded: calls then answer UNAVAILABLE saying how to fix it). It
serves LlmService and the OpenAI-compatible OpenAiService and OpenAiStreamService, all on one engine."""
import logging

from textgen.v1 import llm_pb2, llm_pb2_grpc, openai_pb2, openai_pb2_grpc

from services.common import devices
from services.common.server import Binding, GrpcServer
from services.llm.catalog import AdapterCatalog
from services.llm.config import LlmConfig
from services.llm.engine import Engine
from services.llm.loading import ServingSetup
from services.llm.openai_servicer import OpenAiServicer
from services.llm.planning import Planner
from services.llm.scheduler import Scheduler
from services.llm.servicer import LlmServicer

log = logging.getLogger("textgen.llm")


async def serve(config: LlmConfig) -> None:
    # A bad setting exits here, in one line.
    placement = devices.resolve(config.device, config.dtype, "LLM", bfloat16_on_cpu=True)
    try:
        scheduler = Scheduler(config.batching, config.batch_size_for(placement.on_gpu),
                              config.batch_tokens_for(placement.on_gpu), config.max_queued)
    except ValueError as error:
        raise SystemExit(f"LLM_BATCHING: {error}") from None
    try:
        setup = ServingSetup(config.pack_weights, config.quantization)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    engine = Engine(config.base_model, config.models_dir, placement, scheduler, config.batch_window_ms,
                    config.torch_threads, config.prefix_cache_tokens, config.prefill_chunk_tokens, setup=setup)
    catalog = AdapterCatalog(config.models_dir, engine)
    servicer, openai = LlmServicer(engine, catalog), OpenAiServicer(engine, catalog)
    openai_services = openai_pb2.DESCRIPTOR.services_by_name
    server = GrpcServer(config, [
        Binding(llm_pb2.DESCRIPTOR.services_by_name["LlmService"], llm_pb2_grpc.add_LlmServiceServicer_to_server,
                servicer),
        Binding(openai_services["OpenAiService"], openai_pb2_grpc.add_OpenAiServiceServicer_to_server, openai),
        Binding(openai_services["OpenAiStreamService"], openai_pb2_grpc.add_OpenAiStreamServiceServicer_to_server,
                openai)])

    async def load() -> None:
        if await engine.load():
            servicer.planner = openai.planner = Planner(engine.base.tokenizer, engine.base.window)
            catalog.base_fingerprint = engine.base.fingerprint
            await catalog.refresh()
            await server.set_serving(True, "model loaded")
        else:
            await server.set_serving(False, engine.unavailable_reason)

    await server.run(ready=False, startup=load)
