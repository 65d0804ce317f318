"""Scale-out on loopback: two bigram and two llm replicas behind one Envoy, its clusters listing both. Requests
reach both; an adapter published once is served by every replica (only one is told), and a newer version or a switch
back from the next request on, told or not; killing a replica under load fails no request (Envoy retries idempotent
calls on the other, health checks and outlier detection take it out)."""
import re
import shutil
import signal

import grpc
import httpx
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.load import requests_around
from devtools.models import FACT_QUESTION, RANDOM_GPT2, random_models_dir, train_tiny_adapter
from devtools.processes import free_port, start_gateway, start_service
from services.common import adapters


def handled(metrics_port: int, method: str) -> int:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    return int(sum(float(value) for value in re.findall(
        rf'grpc_server_handled_total{{grpc_code="OK",grpc_method="{re.escape(method)}"}} (\S+)', text)))


def served_versions(replicas) -> list[str]:
    """The sft version each replica's next request gets, asked of each directly."""
    versions = []
    for replica in replicas:
        with grpc.insecure_channel(replica.address) as channel:
            versions.append(llm_pb2_grpc.LlmServiceStub(channel).Generate(llm_pb2.LlmGenerateRequest(
                question=FACT_QUESTION["question"], adapter="sft", max_new_tokens=2)).adapter_version)
    return versions


def test_requests_reach_both_bigram_replicas(corpus_file, tmp_path):
    ports = [free_port(), free_port()]
    env = {"CORPUS": str(corpus_file), "MODELS_DIR": str(tmp_path)}
    with start_service("services.baseline", {**env, "BASELINE_METRICS_PORT": str(ports[0])}, "BASELINE_PORT") as a, \
            start_service("services.baseline", {**env, "BASELINE_METRICS_PORT": str(ports[1])}, "BASELINE_PORT") as b, \
            start_gateway(baseline=[a.address, b.address]) as gateway:
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            for _ in range(40):
                assert client.post("/generate", json={"start_word": "the"}).status_code == 200
        counts = [handled(port, "/textgen.v1.BigramService/Generate") for port in ports]
    assert sum(counts) == 40 and min(counts) >= 10, counts


def test_every_llm_replica_serves_a_new_adapter_and_one_dying_fails_no_request(tmp_path):
    models = random_models_dir(tmp_path)
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2), "LLM_TORCH_THREADS": "1"}
    with start_service("services.llm", env, "LLM_PORT") as a, start_service("services.llm", env, "LLM_PORT") as b, \
            start_gateway(llm=[a.address, b.address]) as gateway, \
            httpx.Client(base_url=gateway.url, timeout=30) as client:
        version = train_tiny_adapter(models, "sft", steps=4)
        with grpc.insecure_channel(a.address) as channel:  # as the trainer does: it tells one replica
            llm_pb2_grpc.LlmServiceStub(channel).ReloadAdapters(llm_pb2.ReloadAdaptersRequest())
        assert served_versions([a, b]) == [version, version]
        through_envoy = {client.post("/generate_with_llm", json={**FACT_QUESTION, "adapter": "sft"}).json()[
            "adapter_version"] for _ in range(10)}
        assert through_envoy == {version}

        # The bound on "every replica serves the same version": the next request. Each one checks the adapters
        # folder first, so neither a publish nor a switch needs a replica to be told (the trainer tells one).
        staged = adapters.staging_dir(models, "sft")
        shutil.copytree(adapters.current_path(models, "sft"), staged, dirs_exist_ok=True)
        second = adapters.publish(models, "sft", staged)
        assert served_versions([a, b]) == [second, second]
        adapters.point_current(models, "sft", version)  # what POST /llm/adapters/sft:serve does before it tells one
        assert served_versions([a, b]) == [version, version]

        # Envoy's health checks (every 5 s, two failures) take the dead replica out within the 8 s after the kill.
        outcomes = requests_around(client, "/generate_with_llm", FACT_QUESTION, before_s=1.5, after_s=8,
                                   event=lambda: b.proc.send_signal(signal.SIGKILL))
        failures, done = outcomes.failures, [o for o in outcomes.answered if o[0] == 200]
        assert failures == [] and len(done) > 20, (failures, len(done))
