"""OpenAiService and OpenAiStreamService: the OpenAI-compatible API on the llm service's own engine. A request becomes
the same `Request` the native API decodes (services/llm/openai/planning.py), holds a lease on its model's adapter
version as a native request does, and runs in the same continuous batch under the same limits: the queue bound
(429), the call's deadline, and cancellation when the caller goes away (services/llm/generation.py)."""
import contextlib
import logging

import grpc
from textgen.v1 import openai_pb2, openai_pb2_grpc

from services.llm.adapters.catalog import AdapterCatalog
from services.llm.constraints import grammars_for
from services.llm.engine.core import Engine
from services.llm.generation import Generation, GenerationFailed, Leases, interleaved, start_choices
from services.llm.openai import planning, responses
from services.common.callers import caller
from services.common.openai_errors import OpenAiError
from services.llm.openai.models import ServedModels
from services.llm.planner import Planner
from services.llm.request import Request
from textgen.openai_error_body import MODEL_NOT_FOUND, RATE_LIMIT_EXCEEDED

log = logging.getLogger("textgen.llm")


def _as_openai_error(failure: GenerationFailed) -> OpenAiError:
    code = RATE_LIMIT_EXCEEDED if failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    return OpenAiError(failure.code, str(failure), code=code)


@contextlib.asynccontextmanager
async def errors_aborting(context):
    """Ends the call with the OpenAI error of whatever fails inside."""
    try:
        yield
    except GenerationFailed as failure:
        await _as_openai_error(failure).abort(context)
    except OpenAiError as error:
        await error.abort(context)


class OpenAiServicer(openai_pb2_grpc.OpenAiServiceServicer, openai_pb2_grpc.OpenAiStreamServiceServicer):
    def __init__(self, engine: Engine, catalog: AdapterCatalog, planner: Planner) -> None:
        self.engine, self.catalog, self.planner = engine, catalog, planner
        self.models = ServedModels(catalog, lambda: engine.base_model_name)

    async def start(self, message, context, chat: bool, streamed: bool,
                     leases: Leases) -> tuple[list[Generation], str]:
        """The generations of the request planned for `message`, one per choice, each under a lease on its model
        (held in `leases`); and the model's name."""
        if message.stream != streamed:  # Envoy routes on `stream`: the other method is what the caller wants
            wanted = "StreamChatCompletion or StreamCompletion" if message.stream else "the unary methods"
            raise OpenAiError(grpc.StatusCode.INVALID_ARGUMENT, f"stream={str(message.stream).lower()} is served "
                              f"by {wanted}", param="stream")
        asked = planning.check_chat(message) if chat else planning.check_completion(message)
        if not self.planner.ready:
            raise OpenAiError(grpc.StatusCode.UNAVAILABLE, self.engine.unavailable_reason)
        await self.catalog.refresh_if_changed()
        who = caller(context)
        model = self.models.named(message.model, who)
        if model is None:
            raise OpenAiError(grpc.StatusCode.NOT_FOUND, self.models.why_missing(message.model, who), param="model",
                              code=MODEL_NOT_FOUND)
        for _ in range(asked.n):
            if (lease := await self.models.acquire(model)) is None:  # it failed to load or went out of service
                raise OpenAiError(grpc.StatusCode.UNAVAILABLE, self.models.why_missing(message.model, who),
                                  param="model")
            leases.add(lease)
        plan = await (self.planner.run(planning.plan_chat, asked, self.models.in_qa_form(model)) if chat
                      else self.planner.run(planning.plan_completion, asked))
        return start_choices(self.engine, leases, plan, context, streamed), model.id

    def _logprobs(self) -> responses.Logprobs:
        return responses.Logprobs(lambda token: grammars_for(self.planner.tokenizer).token_bytes(token))

    def _log(self, requests: list[Request], model: str) -> None:
        log.info("generated", extra={"mode": requests[0].mode, "model": model, "choices": len(requests),
                                     "tokens": sum(len(request.generated) for request in requests),
                                     "stop": requests[0].stop_reason})

    async def _answer(self, message, context, chat: bool):
        async with errors_aborting(context), Leases(self.catalog) as leases:
            generations, model = await self.start(message, context, chat, False, leases)
            async with contextlib.AsyncExitStack() as stack:
                for generation in generations:
                    await stack.enter_async_context(generation)
                requests = [await generation.result() for generation in generations]
            self._log(requests, model)
            return (responses.chat_completion if chat else responses.completion)(model, requests, self._logprobs())

    async def _stream(self, message, context, chat: bool):
        async with Leases(self.catalog) as leases:
            async with errors_aborting(context):  # before the first chunk, an error is the call's status (429 ...)
                generations, model = await self.start(message, context, chat, True, leases)
            async with contextlib.AsyncExitStack() as stack:
                for generation in generations:
                    await stack.enter_async_context(generation)
                chunks = responses.Chunks(model, [generation.request for generation in generations], chat,
                                          self._logprobs())
                try:
                    for chunk in chunks.first():
                        yield chunk
                    async for index, piece, tokens in interleaved(generations):
                        yield chunks.text(index, piece, tokens)
                    requests = [await generation.result() for generation in generations]
                    self._log(requests, model)
                    for chunk in chunks.last(message.stream_options.include_usage):
                        yield chunk
                except GenerationFailed as failure:  # after the first chunk, only the stream itself can say so
                    yield chunks.error(failure.code, str(failure))

    async def CreateChatCompletion(self, message, context):
        return await self._answer(message, context, chat=True)

    async def CreateCompletion(self, message, context):
        return await self._answer(message, context, chat=False)

    # gRPC serves a method as a stream when the method itself is an async generator.
    async def StreamChatCompletion(self, message, context):
        async with contextlib.aclosing(self._stream(message, context, chat=True)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def StreamCompletion(self, message, context):
        async with contextlib.aclosing(self._stream(message, context, chat=False)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def ListModels(self, message, context):
        return openai_pb2.ModelList(object="list", data=self.models.listed(caller(context)))

    async def GetModel(self, message, context):
        async with errors_aborting(context):
            await self.catalog.refresh_if_changed()
            who = caller(context)
            model = self.models.named(message.model, who)
            if model is None:
                raise OpenAiError(grpc.StatusCode.NOT_FOUND, self.models.why_missing(message.model, who),
                                  param="model", code=MODEL_NOT_FOUND)
            return model
