"""The llm service's limits on a model slow enough to see them: a call's deadline and cancellation stop its
generation, a request joins the running batch at the next token, the queue bound refuses with RESOURCE_EXHAUSTED
(429 through Envoy), and Envoy's route timeout is a 504 that cuts a stream before its final chunk."""
import json
import time

import grpc
import httpx
import pytest
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import RANDOM_DEEP_GPT2, build_tiny_model
from devtools.processes import start_gateway, start_service
from services.common.prompts import PREFIX


@pytest.fixture(scope="module")
def slow_llm(tmp_path_factory):
    """A GPT-2-depth model (12 layers, 768 wide, small vocabulary): a 512-token answer takes many seconds on any
    CPU, so stopping it at a deadline or on cancel, and joining a running batch, are visible. Two rows at most,
    one more waiting."""
    directory = tmp_path_factory.mktemp("llm-slow")
    build_tiny_model(directory / RANDOM_DEEP_GPT2, n_layer=12, n_embd=768, n_head=12)
    env = {"MODELS_DIR": str(directory), "LLM_BASE_MODEL": str(directory / RANDOM_DEEP_GPT2), "LLM_TORCH_THREADS": "1",
           "LLM_MAX_BATCH_SIZE": "2", "LLM_MAX_QUEUED": "1"}
    with start_service("services.llm", env, "LLM_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def slow_stub(slow_llm):
    with grpc.insecure_channel(slow_llm.address) as channel:
        yield llm_pb2_grpc.LlmServiceStub(channel)


def status(stub) -> llm_pb2.LlmStatus:
    return stub.GetStatus(llm_pb2.GetLlmStatusRequest())


def wait_until_idle(stub, within: float) -> float:
    started = time.monotonic()
    while status(stub).in_flight:
        assert time.monotonic() - started < within, "the service kept generating after the call ended"
        time.sleep(0.02)
    return time.monotonic() - started


def test_generation_stops_at_the_deadline_and_on_cancel(slow_stub):
    stub = slow_stub
    long_request = llm_pb2.LlmGenerateRequest(start_word="The sea", length=512, adapter="base")
    with pytest.raises(grpc.RpcError) as error:
        stub.Generate(long_request, timeout=0.5)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until_idle(stub, within=0.5)
    call = stub.Generate.future(long_request)
    time.sleep(0.5)
    assert status(stub).in_flight == 1  # left alone it is still generating: the stops here are the service's doing
    call.cancel()
    wait_until_idle(stub, within=0.5)
    stream = stub.GenerateStream(long_request)
    assert next(stream).text.startswith(PREFIX)
    stream.cancel()
    wait_until_idle(stub, within=0.5)


def test_a_request_joins_the_running_batch_at_the_next_token(slow_stub):
    long_request = llm_pb2.LlmGenerateRequest(start_word="The sea", length=512, adapter="base")
    running = slow_stub.GenerateStream(long_request)
    next(running), next(running)  # decoding
    started = time.monotonic()
    short = slow_stub.Generate(llm_pb2.LlmGenerateRequest(start_word="The ship", length=3, adapter="base"))
    joined_in = time.monotonic() - started
    assert short.generated_tokens <= 3
    assert status(slow_stub).in_flight == 1, "the long request should still be decoding"
    assert joined_in < 5, f"the short request took {joined_in:.1f} s: it waited for the running batch"
    running.cancel()
    wait_until_idle(slow_stub, within=1)


def test_past_the_queue_bound_a_request_is_refused_with_resource_exhausted(slow_stub, slow_llm):
    long_request = llm_pb2.LlmGenerateRequest(start_word="The sea", length=512, adapter="base")
    first, second = slow_stub.GenerateStream(long_request), slow_stub.GenerateStream(long_request)
    next(first), next(first), next(second), next(second)  # both rows of the batch decoding
    waiting = slow_stub.Generate.future(long_request)
    deadline = time.monotonic() + 5
    while status(slow_stub).queued < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(grpc.RpcError) as refused:
        slow_stub.Generate(long_request, timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "LLM_MAX_QUEUED" in refused.value.details()
    with start_gateway(llm=slow_llm.address) as gateway:
        response = httpx.post(f"{gateway.url}/generate_with_llm/stream", timeout=10,
                              json={"start_word": "The sea", "length": 512, "adapter": "base"})
    assert response.status_code == 429 and response.json()["code"] == 8  # refused before the stream began
    for call in (first, second, waiting):
        call.cancel()
    wait_until_idle(slow_stub, within=2)


def test_envoy_route_timeout_is_a_504_status_and_cuts_a_stream_before_its_final_chunk(slow_llm, slow_stub):
    long_request = {"start_word": "The sea", "length": 512, "adapter": "base"}
    with start_gateway(llm=slow_llm.address, route_timeouts={"llm": 1.0}) as gateway:
        started = time.monotonic()
        response = httpx.post(f"{gateway.url}/generate_with_llm", json=long_request, timeout=30)
        assert response.status_code == 504 and time.monotonic() - started < 1.5
        assert response.json() == {"code": 4, "message": "upstream request timeout"}
        assert response.headers["server"] == "envoy"
        wait_until_idle(slow_stub, within=0.5)  # Envoy reset the call upstream: the service stopped generating
        lines = []
        # Once the 200 and some chunks are out, Envoy can only end the stream: over HTTP/1.1 it drops the
        # connection before the last chunk, and what arrived lacks the final chunk.
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream("POST", f"{gateway.url}/generate_with_llm/stream", json=long_request,
                              timeout=30) as reply:
                assert reply.status_code == 200
                for line in reply.iter_lines():
                    lines.append(json.loads(line))
        assert lines and lines[0]["text"].startswith(PREFIX)
        assert all("final" not in line for line in lines)
        wait_until_idle(slow_stub, within=0.5)
