"""Which adapter the catalog lets go (services/llm/adapters/catalog.py) when a request asks for one more than
LLM_MAX_LOADED_ADAPTERS holds: the least recently used of those no request holds, whatever their order of loading;
an adapter with a request in flight stays, even when it is the least recently used, and its request's slot keeps
its weights. On the real engine (tiny random GPT-2) with four published adapters of random LoRA weights and two held."""
import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM

from devtools.models import RANDOM_GPT2, random_models_dir, save_random_lora
from services.common import adapters, devices
from services.common.base_model import fingerprint
from services.llm.adapters.catalog import AdapterCatalog
from services.llm.config import LlmConfig
from services.llm.engine.core import Engine

NAMES = ("alpha", "bravo", "charlie", "delta")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = random_models_dir(tmp_path_factory.mktemp("eviction"))
    base = AutoModelForCausalLM.from_pretrained(directory / RANDOM_GPT2)
    for seed, name in enumerate(NAMES):
        staged = save_random_lora(base, adapters.staging_dir(directory, name), 4, seed)
        adapters.write_base_record(staged, RANDOM_GPT2, fingerprint(base.config))
        adapters.publish(directory, name, staged)
    return directory


def loaded(catalog: AdapterCatalog) -> set[str]:
    return {row["name"] for row in catalog.status() if row["loaded"]}


async def held_two(models_dir) -> AdapterCatalog:
    """A catalog of the four adapters on a real engine holding two: alpha and bravo, loaded first (in name order)."""
    config = LlmConfig(base_model=str(models_dir / RANDOM_GPT2), models_dir=models_dir, torch_threads=1,
                       max_loaded_adapters=2)
    torch.set_num_threads(1)
    engine = Engine(config, devices.resolve("cpu", "float32", "LLM"))
    assert await engine.load()
    catalog = AdapterCatalog(models_dir, engine, max_loaded=2, always_listed=())
    await catalog.open(engine.base.fingerprint)
    assert loaded(catalog) == {"alpha", "bravo"}
    return catalog


async def use(catalog: AdapterCatalog, name: str) -> None:
    """One request for `name`, from its lease to its end."""
    catalog.release(await catalog.acquire(name))


def test_the_least_recently_used_idle_adapter_goes_first(models_dir):
    async def scenario():
        catalog = await held_two(models_dir)
        await use(catalog, "bravo")
        await use(catalog, "alpha")  # alpha, loaded first, is now the most recently used
        await use(catalog, "charlie")
        after_charlie = loaded(catalog)
        await use(catalog, "alpha")
        await use(catalog, "delta")
        return after_charlie, loaded(catalog)

    after_charlie, after_delta = asyncio.run(scenario())
    assert after_charlie == {"alpha", "charlie"}  # bravo, the least recently used, went
    assert after_delta == {"alpha", "delta"}  # then charlie


def test_an_adapter_with_a_request_in_flight_stays_though_it_is_the_least_recently_used(models_dir):
    async def scenario():
        catalog = await held_two(models_dir)
        in_flight = await catalog.acquire("alpha")  # a request under alpha, still decoding
        await use(catalog, "bravo")  # bravo is more recently used than alpha
        await use(catalog, "charlie")
        after_charlie = loaded(catalog)
        await use(catalog, "delta")
        after_delta = loaded(catalog)
        still_current = catalog.acquire("alpha")
        lease = await still_current
        catalog.release(lease)
        catalog.release(in_flight)
        return after_charlie, after_delta, in_flight, lease

    after_charlie, after_delta, in_flight, again = asyncio.run(scenario())
    assert after_charlie == {"alpha", "charlie"}  # bravo went, though alpha was used less recently
    assert after_delta == {"alpha", "delta"}
    assert again.slot == in_flight.slot  # alpha never left its slot while its request ran
