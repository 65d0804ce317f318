"""The adapter affinity as rendered (gateway/adapter_affinity.py): on by default, a ring hash over the llm replicas
keyed by x-textgen-adapter on every llm route, the body read before transcoding on the native routes that name an
adapter and on /v1; LLM_ADAPTER_AFFINITY=off renders least request and none of it. Envoy's behaviour with it:
tests/test_adapter_affinity.py."""
import subprocess

import pytest
import yaml

from envoy.extensions.filters.http.json_to_metadata.v3 import json_to_metadata_pb2
from gateway import adapter_affinity, render
from gateway.targets import compose_target, local_target
from tests.rendered_envoy import bootstrap, manager
from textgen.paths import ENVOY

READS_BODY = "envoy.filters.http.json_to_metadata"


@pytest.fixture(scope="module")
def affinity_off(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("affinity-off")
    path = render.write(local_target({adapter_affinity.VARIABLE: "off"}, files_dir=folder), folder)
    return {"path": path, "dict": yaml.safe_load(path.read_text())}


def llm_cluster(config: dict):
    return next(c for c in bootstrap(config).static_resources.clusters if c.name == "llm")


def test_on_by_default_the_llm_replicas_are_a_ring_hashed_by_the_adapter_header(rendered):
    for target in ("local", "compose"):
        cluster = llm_cluster(rendered[target]["dict"])
        assert cluster.lb_policy == cluster.RING_HASH
        assert cluster.health_checks[0].HasField("grpc_health_check") and cluster.outlier_detection.consecutive_5xx
    routes = manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes
    hashed = {r.match.path: [p.header.header_name for p in r.route.hash_policy] for r in routes if r.HasField("route")}
    llm = {r.match.path for r in routes if r.route.cluster == "llm"}
    assert "/textgen.v1.LlmService/Generate" in llm and "/textgen.v1.OpenAiService/CreateChatCompletion" in llm
    assert all(hashed[path] == [adapter_affinity.HEADER] for path in llm)
    assert not any(hashed[path] for path in set(hashed) - llm)


def test_the_body_is_read_on_the_native_routes_that_name_an_adapter_and_on_v1(rendered):
    routes = manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes
    reading = {r.match.path or r.match.path_separated_prefix: r for r in routes if READS_BODY in r.typed_per_filter_config}
    assert set(reading) == {"/generate_with_llm", "/generate_with_llm/stream", "/v1"}
    for path, route in reading.items():
        rules = json_to_metadata_pb2.JsonToMetadata()
        route.typed_per_filter_config[READS_BODY].Unpack(rules)
        keys = {(rule.selectors[0].key, rule.on_present.metadata_namespace) for rule in rules.request_rules.rules}
        if path == "/v1":
            assert keys == {("stream", "openai"), ("model", adapter_affinity.NAMESPACE)}
        else:
            assert keys == {(field, adapter_affinity.NAMESPACE) for field in adapter_affinity.NATIVE_FIELDS}
            assert [(h.name, h.string_match.exact) for h in route.match.headers] == [(":method", "POST")]
        assert rules.request_rules.allow_empty_content_type  # curl -d sends a form's content type: read it anyway


def test_off_renders_least_request_and_no_body_reading(rendered, affinity_off):
    cluster = llm_cluster(affinity_off["dict"])
    assert cluster.lb_policy == cluster.LEAST_REQUEST
    text = yaml.safe_dump(affinity_off["dict"])
    assert adapter_affinity.HEADER not in text and adapter_affinity.NAMESPACE not in text
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(affinity_off["path"])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert compose_target({adapter_affinity.VARIABLE: "OFF"}).adapter_affinity is False
    assert compose_target({}).adapter_affinity and local_target({adapter_affinity.VARIABLE: "on"}).adapter_affinity


def test_a_value_other_than_on_or_off_is_refused_by_name():
    with pytest.raises(SystemExit, match="LLM_ADAPTER_AFFINITY='yes'"):
        local_target({adapter_affinity.VARIABLE: "yes"})
