"""The stored responses' SQLite file: bounded (the oldest go first), each response its owner's (what '' made is
everyone's, as elsewhere), and still there for a new store on the same file (a restarted or another llm replica);
a file that cannot be used is an error naming it."""
import asyncio

import pytest
from textgen.v1 import responses_pb2

from services.llm.responses.store import ResponseStore, StoreUnavailable

CONVERSATION = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def made(response_id: str) -> responses_pb2.Response:
    return responses_pb2.Response(id=response_id, object="response", status="completed", model="base")


def test_the_store_is_bounded_owned_and_outlives_its_process(tmp_path):
    async def run():
        store = ResponseStore(tmp_path / "responses.sqlite", max_stored=2)
        for response_id, owner in (("resp_1", "alice"), ("resp_2", ""), ("resp_3", "alice")):
            await store.put(made(response_id), owner, CONVERSATION)
        assert await store.get("resp_1", "alice") is None  # the oldest left when a third came
        assert (await store.get("resp_3", "alice")).conversation == CONVERSATION
        assert await store.get("resp_3", "bob") is None and await store.get("resp_3", "") is None
        assert (await store.get("resp_2", "bob")).response.model == "base"  # made without a key: everyone's
        assert not await store.delete("resp_3", "bob") and await store.delete("resp_3", "alice")
        reopened = ResponseStore(tmp_path / "responses.sqlite", max_stored=2)
        assert await reopened.get("resp_3", "alice") is None and await reopened.get("resp_2", "") is not None

    asyncio.run(run())


def test_a_file_that_cannot_be_used_is_an_error_naming_it(tmp_path):
    store = ResponseStore(tmp_path, max_stored=2)  # a folder, not a file SQLite can open
    with pytest.raises(StoreUnavailable, match=f"the stored responses \\({tmp_path}, LLM_RESPONSES_DB\\) cannot be"):
        asyncio.run(store.put(made("resp_1"), "", CONVERSATION))
