"""The LSTM service: loads MODELS_DIR/rnn at start-up (never trains), then answers RnnService.Generate."""
import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

import grpc
import torch
from textgen.v1 import common_pb2, rnn_pb2, rnn_pb2_grpc

from services.common.config import ConfigError
from services.common.errors import Violations, check_start_word
from services.common.limits import Bound, from_request, out_of_range
from services.common.server import Binding, GrpcServer
from services.common.words import tokenize
from services.rnn import artifacts
from services.rnn.config import RnnConfig
from services.rnn.generate import generate

log = logging.getLogger("textgen.rnn")


@dataclasses.dataclass(frozen=True)
class RnnParams:
    length: Annotated[int, Bound(1, 1000)] = 15
    temperature: Annotated[float, Bound(0, 5.0, low_open=True)] = 1.0


def training_hint(directory) -> str:
    return (f"no trained LSTM model at {directory}: train one with `make rnn-model` or "
            f"`MODELS_DIR={directory.parent} python -m services.rnn.train`, then retry (the service loads it on the "
            f"next request)")


class RnnServicer(rnn_pb2_grpc.RnnServiceServicer):
    def __init__(self, directory, set_serving: Callable[[bool, str], Awaitable[None]]) -> None:
        self.set_serving = set_serving
        self.directory = directory
        self.trained: artifacts.TrainedModel | None = None
        self.unavailable = "the LSTM model is still loading; retry shortly"
        self._loading = asyncio.Lock()

    async def load(self) -> None:
        """Loads the model if it is on disk; otherwise records why not. Health follows."""
        async with self._loading:
            if self.trained is not None:
                return
            try:
                self.trained = await asyncio.to_thread(artifacts.load, self.directory)
            except FileNotFoundError:
                self.unavailable = training_hint(self.directory)
            except Exception as error:  # a corrupt or incompatible file: say so, keep serving health
                self.unavailable = (f"the LSTM model at {self.directory} could not be loaded ({error}); retrain it "
                                    f"with `make rnn-model` or `python -m services.rnn.train`")
            if self.trained is None:
                await self.set_serving(False, self.unavailable)
                return
            meta = self.trained.metadata
            log.info("LSTM model loaded", extra={"path": str(self.directory), "vocab_size": meta.get("vocab_size"),
                                                 "validation_perplexity": meta.get("validation_perplexity"),
                                                 "corpus_sha256": meta.get("corpus_sha256")})
            await self.set_serving(True, "model loaded")

    async def Generate(self, request: rnn_pb2.RnnGenerateRequest, context: grpc.aio.ServicerContext):
        violations = Violations()
        check_start_word(violations, request.start_word)
        if not violations and not tokenize(request.start_word):
            violations.add("start_word", "start_word must contain at least one word (letters or digits)")
        params = from_request(RnnParams, request)
        violations.add_all(out_of_range(params))
        await violations.abort_if_any(context)
        if self.trained is None:
            await self.load()  # a model trained since start-up is picked up here
        if self.trained is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, self.unavailable)
        generator = torch.Generator()
        if request.HasField("seed"):
            generator.manual_seed(request.seed)
        else:
            generator.seed()
        result = await asyncio.to_thread(generate, self.trained.model, self.trained.vocab, request.start_word,
                                         params.length, params.temperature, generator)
        text = " ".join([*request.start_word.split(), *result.new_words])
        return common_pb2.GenerateResponse(generated_text=text, model="lstm", warning=result.warning)


async def serve(config: RnnConfig) -> None:
    if config.torch_threads < 1:
        raise ConfigError(f"RNN_TORCH_THREADS must be at least 1 (got {config.torch_threads})")
    torch.set_num_threads(config.torch_threads)
    servicer = RnnServicer(artifacts.model_dir(config.models_dir),
                           lambda serving, reason: server.set_serving(serving, reason))
    server = GrpcServer(config, [Binding(rnn_pb2.DESCRIPTOR.services_by_name["RnnService"],
                                         rnn_pb2_grpc.add_RnnServiceServicer_to_server, servicer)])
    await server.run(ready=False, startup=servicer.load)
