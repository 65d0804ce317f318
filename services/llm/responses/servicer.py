"""ResponsesService and ResponsesStreamService: OpenAI's Responses API as a translation of chat completions
(services/llm/responses/conversation.py). A response runs as the chat completion it translates to, through the chat
servicer's own start (model lookup and leases, planning, limits, cancellation), and is stored unless `store` is
false (services/llm/responses/store.py), so that `previous_response_id` can go on from it."""
import contextlib
import logging

import grpc
from textgen.v1 import responses_pb2, responses_pb2_grpc

from services.common.callers import caller
from services.common.errors import shown
from services.common.openai_errors import OpenAiError, not_found
from services.llm.generation import GenerationFailed, Leases, interleaved
from services.llm.openai.servicer import OpenAiServicer, errors_aborting
from services.llm.responses import building, conversation
from services.llm.responses.store import ResponseStore, StoreUnavailable

log = logging.getLogger("textgen.llm")


def _missing(response_id: str, param: str | None = None) -> OpenAiError:
    return not_found(f"response {shown(response_id)} is not stored here: it was made with store false, deleted, or "
                     "has left the bounded store (LLM_RESPONSES_MAX_STORED), or another API key made it", param=param)


@contextlib.asynccontextmanager
async def _store_errors():
    """A store that cannot be used as the call's error: 503, naming the file."""
    try:
        yield
    except StoreUnavailable as error:
        raise OpenAiError(grpc.StatusCode.UNAVAILABLE, str(error)) from None


class ResponsesServicer(responses_pb2_grpc.ResponsesServiceServicer, responses_pb2_grpc.ResponsesStreamServiceServicer):
    def __init__(self, chat: OpenAiServicer, store: ResponseStore) -> None:
        self.chat, self.store = chat, store

    async def _start(self, message, context, streamed: bool, leases: Leases):
        """(the translation, the chat's generation, the model's name) of the response `message` asks for."""
        previous = []
        if message.previous_response_id:
            async with _store_errors():
                stored = await self.store.get(message.previous_response_id, caller(context))
            if stored is None:
                raise _missing(message.previous_response_id, "previous_response_id")
            previous = stored.conversation
        translated = conversation.translate(message, previous, streamed)
        try:
            [generation], model = await self.chat.start(translated.chat, context, True, streamed, leases)
        except OpenAiError as error:
            raise translated.renamed(error) from None
        return translated, generation, model

    async def _keep(self, context, made: responses_pb2.Response, translated) -> None:
        if made.store:
            async with _store_errors():
                await self.store.put(made, caller(context), [*translated.conversation, *building.as_messages(
                    list(made.output))])

    async def CreateResponse(self, message, context):
        async with errors_aborting(context), Leases(self.chat.catalog) as leases:
            translated, generation, model = await self._start(message, context, False, leases)
            async with generation:
                request = await generation.result()
            made = building.response(building.new_id("resp"), model, message, request,
                                     building.output_items(request))
            await self._keep(context, made, translated)
            return made

    async def StreamResponse(self, message, context):
        async with contextlib.aclosing(self._stream(message, context)) as events:
            async for event in events:
                yield event

    async def _stream(self, message, context):
        async with Leases(self.chat.catalog) as leases:
            async with errors_aborting(context):  # before the first event, an error is the call's status
                translated, generation, model = await self._start(message, context, True, leases)
            async with generation:
                events = building.Events(building.new_id("resp"), model, message, generation.request)
                try:
                    for event in events.first():
                        yield event
                    async for _, piece, _ in interleaved([generation]):
                        for event in events.piece(piece):
                            yield event
                    await generation.result()
                    closing, made = events.last()
                    await self._keep(context, made, translated)
                    for event in closing:
                        yield event
                except GenerationFailed as failure:  # after the first event, only the stream itself can say so
                    yield events.error(failure.code.name.lower(), str(failure))
                except OpenAiError as error:  # the store failed: the response is not stored, and the stream says so
                    yield events.error(error.status.name.lower(), str(error))

    async def GetResponse(self, message, context):
        async with errors_aborting(context), _store_errors():
            stored = await self.store.get(message.response_id, caller(context))
            if stored is None:
                raise _missing(message.response_id)
            return stored.response

    async def DeleteResponse(self, message, context):
        async with errors_aborting(context), _store_errors():
            if not await self.store.delete(message.response_id, caller(context)):
                raise _missing(message.response_id)
            return responses_pb2.ResponseDeleted(id=message.response_id, object="response", deleted=True)

