"""The bigram service: trains its counts from CORPUS at start-up, then answers BigramService.Generate."""
import asyncio
import dataclasses
import logging
import random
from typing import Annotated

import grpc
from textgen.v1 import baseline_pb2, baseline_pb2_grpc, common_pb2

from services.baseline.config import BaselineConfig
from services.baseline.model import BigramModel
from services.common.corpus import load_corpus
from services.common.errors import Violations, check_start_word
from services.common.limits import Bound, from_request, out_of_range
from services.common.server import Binding, GrpcServer

log = logging.getLogger("textgen.baseline")


@dataclasses.dataclass(frozen=True)
class BigramParams:
    length: Annotated[int, Bound(1, 1000)] = 15


class BigramServicer(baseline_pb2_grpc.BigramServiceServicer):
    def __init__(self) -> None:
        self.model: BigramModel | None = None

    async def Generate(self, request: baseline_pb2.BigramGenerateRequest, context: grpc.aio.ServicerContext):
        violations = Violations()
        check_start_word(violations, request.start_word)
        if request.start_word.strip() and len(request.start_word.split()) > 1:
            violations.add("start_word", "start_word must be a single word (the bigram model conditions on one)")
        params = from_request(BigramParams, request)
        violations.add_all(out_of_range(params))
        await violations.abort_if_any(context)
        if self.model is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the bigram model is still training; retry shortly")
        rng = random.Random(request.seed) if request.HasField("seed") else random.Random()
        words, warning = self.model.generate(request.start_word.strip(), params.length, rng)
        return common_pb2.GenerateResponse(generated_text=" ".join(words), model="bigram", warning=warning)


async def serve(config: BaselineConfig) -> None:
    servicer = BigramServicer()
    server = GrpcServer(
        config,
        [Binding(baseline_pb2.DESCRIPTOR.services_by_name["BigramService"],
                 baseline_pb2_grpc.add_BigramServiceServicer_to_server, servicer)],
    )

    async def train() -> None:
        corpus = await asyncio.to_thread(load_corpus, config.corpus, config.models_dir, config.corpus_chapters)
        servicer.model = await asyncio.to_thread(BigramModel.train, corpus.text)
        log.info("bigram model trained",
                 extra={"source": corpus.source, "sha256": corpus.sha256, "vocabulary": servicer.model.vocabulary_size})
        await server.set_serving(True)

    await server.run(ready=False, startup=train)
