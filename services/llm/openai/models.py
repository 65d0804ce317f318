"""The models the OpenAI-compatible API serves, as /v1/models lists them (vLLM lists LoRA adapters the same way): the
base model under its name, also reachable as "base", and each adapter being served, with the base as its parent.
A caller sees everyone's adapters and its own fine-tuned models (services/common/callers.py), each owned_by the API
key's name that made it; another key's are as if they did not exist."""
import time

from textgen.v1 import openai_pb2

from services.common import adapters
from services.common.errors import shown
from services.llm.adapters.catalog import AdapterCatalog, Lease

OWNER = "textgen"


class ServedModels:
    def __init__(self, catalog: AdapterCatalog, base_name) -> None:
        self.catalog = catalog
        self.base_name = base_name  # a callable: the base model's name is known once it is chosen
        self.started = int(time.time())

    def _base(self) -> openai_pb2.Model:
        return openai_pb2.Model(id=self.base_name(), object="model", created=self.started, owned_by=OWNER)

    def listed(self, who: str) -> list[openai_pb2.Model]:
        """What the caller `who` may ask for."""
        served = [(row, self.catalog.published(row["name"])) for row in self.catalog.status()
                  if self.catalog.is_published(row["name"])]
        return [self._base()] + [
            openai_pb2.Model(id=row["name"], object="model", owned_by=published.owner or OWNER,
                             parent=self.base_name(), version=row["version"],
                             created=int(adapters.published_at(row["version"]).timestamp()))
            for row, published in served if published.seen_by(who)]

    def named(self, name: str, who: str) -> openai_pb2.Model | None:
        if name == adapters.BASE:
            return self._base()
        return next((model for model in self.listed(who) if model.id == name), None)

    def in_qa_form(self, model: openai_pb2.Model) -> bool:
        """Whether a question in the QA form is answered in the answer format: by an adapter trained on the QA
        prompt (the seed's), not by the base model or a model fine-tuned on chat."""
        published = self.catalog.published(model.id) if model.HasField("parent") else None
        return published is not None and not published.chat

    async def acquire(self, model: openai_pb2.Model) -> Lease | None:
        """A lease on the model's current version (the catalog's; loaded first if it is not); None when it cannot
        be served."""
        return await self.catalog.acquire(adapters.BASE if not model.HasField("parent") else model.id)

    def why_missing(self, name: str, who: str) -> str:
        published = self.catalog.published(name)
        known = name in self.catalog.names and (published is None or published.seen_by(who))
        reason = f"adapter {name!r} is not served ({self.catalog.why_missing(name)})" \
            if known else f"model {shown(name)} is not served here"
        return f"{reason}; GET /v1/models lists the models served"
