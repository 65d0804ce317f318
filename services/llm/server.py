"""The llm service: loads LLM_BASE_MODEL and the current adapters after the port is open (health NOT_SERVING until
then, and for good when the base model cannot be loaded: calls then answer UNAVAILABLE saying how to fix it). It
serves LlmService, the OpenAI-compatible OpenAiService and OpenAiStreamService and OpenAI's Responses API
(ResponsesService, ResponsesStreamService), all on one engine, and vLLM's TokenizerService beside them."""
import logging

from textgen.v1 import llm_pb2, llm_pb2_grpc, openai_pb2, openai_pb2_grpc, responses_pb2, responses_pb2_grpc

from services.common import devices
from services.common.server import Binding, GrpcServer
from services.llm.adapters.catalog import AdapterCatalog
from services.llm.config import LlmConfig
from services.llm.engine.core import Engine
from services.llm.openai.servicer import OpenAiServicer
from services.llm.openai.tokenizer import TokenizerServicer
from services.llm.planner import Planner
from services.llm.responses.servicer import ResponsesServicer
from services.llm.responses.store import ResponseStore
from services.llm.native.servicer import LlmServicer

log = logging.getLogger("textgen.llm")


async def serve(config: LlmConfig) -> None:
    # A bad setting exits here, in one line.
    placement = devices.resolve(config.device, config.dtype, "LLM")
    try:
        engine = Engine(config, placement)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    catalog = AdapterCatalog(config.models_dir, engine, config.max_loaded_adapters, config.adapter_load_timeout_s)
    planner = Planner()
    native, openai = LlmServicer(engine, catalog, planner), OpenAiServicer(engine, catalog, planner)
    tokenizer = TokenizerServicer(planner, openai.models, lambda: engine.unavailable_reason)
    if config.responses_max_stored < 1:
        raise SystemExit(f"LLM_RESPONSES_MAX_STORED={config.responses_max_stored}: say how many responses to keep "
                         "(at least 1)")
    responses = ResponsesServicer(openai, ResponseStore(config.responses_db_path, config.responses_max_stored))
    openai_services = openai_pb2.DESCRIPTOR.services_by_name
    responses_services = responses_pb2.DESCRIPTOR.services_by_name
    server = GrpcServer(config, [
        Binding(llm_pb2.DESCRIPTOR.services_by_name["LlmService"], llm_pb2_grpc.add_LlmServiceServicer_to_server,
                native),
        Binding(openai_services["OpenAiService"], openai_pb2_grpc.add_OpenAiServiceServicer_to_server, openai),
        Binding(openai_services["OpenAiStreamService"], openai_pb2_grpc.add_OpenAiStreamServiceServicer_to_server,
                openai),
        Binding(openai_services["TokenizerService"], openai_pb2_grpc.add_TokenizerServiceServicer_to_server,
                tokenizer),
        Binding(responses_services["ResponsesService"], responses_pb2_grpc.add_ResponsesServiceServicer_to_server,
                responses),
        Binding(responses_services["ResponsesStreamService"],
                responses_pb2_grpc.add_ResponsesStreamServiceServicer_to_server, responses)])

    async def load() -> None:
        if await engine.load():
            planner.use(engine.base.tokenizer, engine.base.window)
            await catalog.open(engine.base.fingerprint)
            await server.set_serving(True, "model loaded")
        else:
            await server.set_serving(False, engine.unavailable_reason)

    await server.run(ready=False, startup=load)
