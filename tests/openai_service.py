"""The llm service on the tiny random GPT-2 (an sft adapter published, no rl) behind Envoy, as the OpenAI-compatible
API's tests use it: the `openai` client on the gateway, and the native stub beside it."""
import grpc
import openai
import pytest
from textgen.v1 import llm_pb2_grpc

from devtools.models import RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import free_port, start_gateway, start_service

HELLO = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = random_models_dir(tmp_path_factory.mktemp("openai-models"))
    train_tiny_adapter(directory, "sft", steps=60)
    return directory  # no rl adapter: a model that is not served


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def llm(models_dir, metrics_port):
    # Two rows and no waiting line: the queue-bound test fills the batch with two streams.
    env = {"MODELS_DIR": str(models_dir), "LLM_BASE_MODEL": str(models_dir / RANDOM_GPT2), "LLM_TORCH_THREADS": "1",
           "LLM_MAX_BATCH_SIZE": "2", "LLM_MAX_QUEUED": "0", "LLM_METRICS_PORT": str(metrics_port)}
    with start_service("services.llm", env, "LLM_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def gateway(llm):
    with start_gateway(llm=llm.address) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway):
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60) as made:
        yield made


@pytest.fixture(scope="module")
def native(llm):
    with grpc.insecure_channel(llm.address) as channel:
        yield llm_pb2_grpc.LlmServiceStub(channel)


@pytest.fixture(scope="module")
def base_name(models_dir) -> str:
    return str(models_dir / RANDOM_GPT2)
