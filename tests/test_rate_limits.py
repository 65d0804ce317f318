"""Rate limits at the edge, through a real Envoy with small token buckets: a burst past a bucket gets 429 with a
Status body and retry-after; a bucket is shared by its routes and limits no other; a raw gRPC caller gets
RESOURCE_EXHAUSTED. Then how the settings are read and turned into Envoy's token buckets."""
import grpc
import httpx
import pytest
from textgen.v1 import trainer_pb2, trainer_pb2_grpc

from devtools.processes import free_port, start_gateway, start_service
from gateway.rate_limits import DEFAULT_BUCKETS, TokenBucket, buckets_from
from gateway.local_replies import RATE_LIMITED

# One token every 50 s: none comes back while a test runs, so each figure is exact.
RATE, BURST, SENT = 0.02, 3, 10


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A trainer with no model and no llm service: enough to answer cancels and job listings."""
    env = {"MODELS_DIR": str(tmp_path_factory.mktemp("models")), "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    with start_service("services.trainer", env, "TRAINER_PORT") as service:
        yield service


def test_a_burst_past_the_training_bucket_gets_429_with_a_status_body_and_retry_after(trainer):
    with start_gateway(trainer=trainer.address, rate_limits={"train": TokenBucket(RATE, BURST)}) as gateway:
        replies = [httpx.post(f"{gateway.url}/llm/jobs/no-such-job:cancel", timeout=10)
                   for _ in range(SENT)]
    # The trainer itself answers the first BURST (no such job); Envoy refuses the rest.
    assert [r.status_code for r in replies] == [404] * BURST + [429] * (SENT - BURST)
    assert replies[0].json()["code"] == 5 and "retry-after" not in replies[0].headers
    for refused in replies[BURST:]:
        assert refused.json() == {"code": 8, "message": RATE_LIMITED}
        assert refused.headers["retry-after"] == "50" and refused.headers["content-type"] == "application/json"


def test_a_bucket_is_shared_by_its_routes_and_limits_no_other(trainer, baseline):
    buckets = {"train": TokenBucket(RATE, 1), "llm": TokenBucket(RATE, 2)}
    with start_gateway(trainer=trainer.address, baseline=baseline.address, rate_limits=buckets) as gateway:
        def post(path, body=None, **kwargs):
            return httpx.post(f"{gateway.url}{path}", json=body, timeout=10, **kwargs).status_code

        assert post("/llm/train_rl", {}) == 400  # the trainer's answer (no SFT adapter): the one token is spent
        assert post("/llm/train_sft", {}) == post("/llm/jobs/j:cancel") == 429
        # No llm service runs here: 503 is Envoy routing the request on, past the bucket.
        qa = {"question": "Who?", "context": "Ada."}
        assert [post("/generate_with_llm", qa), post("/generate_with_llm/stream", qa)] == [503, 503]
        assert httpx.get(f"{gateway.url}/llm/status", timeout=10).status_code == 429
        # The OpenAI paths take from the same bucket, and are refused in OpenAI's error form.
        chat = {"model": "base", "messages": [{"role": "user", "content": "Hi"}]}
        for refused in (httpx.get(f"{gateway.url}/v1/models", timeout=10),
                        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, timeout=10),
                        httpx.post(f"{gateway.url}/v1/chat/completions", json={**chat, "stream": True}, timeout=10)):
            assert refused.status_code == 429 and refused.headers["retry-after"] == "50"
            assert refused.json()["error"]["message"], refused.text
        # Job reads are not limited, and the bigram's calls take from a bucket of their own.
        for _ in range(2 * SENT):
            assert httpx.get(f"{gateway.url}/llm/jobs", timeout=10).status_code == 200
            assert httpx.get(f"{gateway.url}/llm/jobs/j", timeout=10).status_code == 404
            assert post("/generate", {"start_word": "the"}) == 200


def test_a_raw_grpc_caller_gets_resource_exhausted_with_retry_after(trainer):
    with start_gateway(trainer=trainer.address, rate_limits={"train": TokenBucket(RATE, 1)}) as gateway, \
            grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        cancel = trainer_pb2_grpc.TrainerServiceStub(channel).CancelJob
        request, metadata = trainer_pb2.CancelJobRequest(job_id="j"), []
        codes = []
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as error:
                cancel(request, metadata=metadata, timeout=10)
            codes.append(error.value.code())
    assert codes == [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert error.value.details() == RATE_LIMITED
    assert ("retry-after", "50") in error.value.trailing_metadata()


def test_settings_come_from_the_environment_and_unset_or_empty_keep_the_defaults():
    assert buckets_from({}) == DEFAULT_BUCKETS
    assert buckets_from({"GATEWAY_LLM_RATE": "2.5", "GATEWAY_LLM_BURST": "10", "GATEWAY_TRAIN_RATE": ""}) == {
        "llm": TokenBucket(2.5, 10), "small_models": DEFAULT_BUCKETS["small_models"], "train": DEFAULT_BUCKETS["train"]}


@pytest.mark.parametrize("variable, value", [
    ("GATEWAY_LLM_RATE", "fast"), ("GATEWAY_LLM_RATE", "0"), ("GATEWAY_TRAIN_RATE", "-1"),
    ("GATEWAY_TRAIN_RATE", "nan"), ("GATEWAY_TRAIN_RATE", "inf"), ("GATEWAY_LLM_BURST", "1.5"),
    ("GATEWAY_TRAIN_BURST", "0"),
])
def test_a_bad_setting_stops_the_renderer_naming_it(variable, value):
    with pytest.raises(SystemExit, match=f"{variable}={value!r} is not a valid rate limit"):
        buckets_from({variable: value})


def test_a_burst_too_small_for_its_rate_is_refused():
    # 100 tokens a second in a bucket of 2 means refilling every 20 ms; Envoy refills every 50 ms at most.
    with pytest.raises(SystemExit, match="GATEWAY_LLM_BURST=2 is too small for GATEWAY_LLM_RATE=100"):
        buckets_from({"GATEWAY_LLM_RATE": "100", "GATEWAY_LLM_BURST": "2"})


@pytest.mark.parametrize("bucket, envoy, retry_after", [
    (TokenBucket(500, 1000), {"max_tokens": 1000, "tokens_per_fill": 500, "fill_interval": "1.0s"}, 1),
    (TokenBucket(100, 10), {"max_tokens": 10, "tokens_per_fill": 10, "fill_interval": "0.1s"}, 1),
    (TokenBucket(2.5, 10), {"max_tokens": 10, "tokens_per_fill": 2, "fill_interval": "0.8s"}, 1),
    (TokenBucket(0.02, 3), {"max_tokens": 3, "tokens_per_fill": 1, "fill_interval": "50.0s"}, 50),
])
def test_a_rate_becomes_whole_tokens_per_fill_interval(bucket, envoy, retry_after):
    assert bucket.envoy() == envoy and bucket.retry_after_seconds == retry_after
