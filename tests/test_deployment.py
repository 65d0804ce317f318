"""The deployment files agree with the code: every compose build target is a stage of the one Dockerfile, each
service image copies its own service folder and no other service's, and compose hands the host's rate-limit settings
to the Envoy image's build. Compose is secure by default: it refuses to start without a trainer token, and only
Envoy publishes a port; the trainer image will not start without one either."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from devtools.processes import base_env
from gateway.rate_limits import DEFAULT_BUCKETS, burst_variable, rate_variable
from textgen.endpoints import ENDPOINTS
from textgen.paths import ROOT


def stages() -> dict[str, str]:
    """Dockerfile stage name -> its text."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM \S+ AS (\S+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_compose_target_is_a_dockerfile_stage():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    targets = {service["build"]["target"] for service in compose.values() if "build" in service}
    assert targets == set(ENDPOINTS) | {"envoy"}
    assert targets <= set(stages())


def test_each_service_image_holds_its_own_service_and_the_generated_contracts():
    for endpoint in ENDPOINTS.values():
        stage = stages()[endpoint.name]
        assert f"COPY services/{endpoint.name} services/{endpoint.name}" in stage
        assert "COPY --from=contracts /src/textgen textgen" in stage
        assert f"EXPOSE {endpoint.port}" in stage and f'"services.{endpoint.name}"' in stage
        others = set(ENDPOINTS) - {endpoint.name}
        assert not any(f"COPY services/{other} " in stage for other in others)


def test_the_contracts_stage_copies_every_shared_module_services_and_the_gateway_import():
    """textgen's own modules (not its client side) are what services and Envoy's render import: every one of them
    must reach the images, or an image fails to build or start."""
    copied = re.search(r"^COPY (textgen/\S+ )+textgen/$", stages()["contracts"], flags=re.MULTILINE).group(0).split()
    shared = {f"textgen/{module.name}" for module in (ROOT / "textgen").glob("*.py") if module.name != "__main__.py"}
    assert set(copied[1:-1]) == shared


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
        assert gpu["extends"] == {"service": name}
        assert gpu["build"]["target"] == cpu["build"]["target"] == name
        assert gpu["build"]["args"]["TORCH_INDEX"] == ""  # pip's default index: its Linux torch is CUDA's
        assert cpu["build"]["args"]["TORCH_INDEX"] == "${TORCH_INDEX:-}"  # the builder's CPU index, if any
        assert gpu["deploy"]["resources"]["reservations"]["devices"] == [
            {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert gpu["networks"]["default"]["aliases"] == [name]  # Envoy and the trainer find it by that name
        assert compose["envoy"]["depends_on"][name]["required"] is False
    for name in ("rnn", "llm", "trainer"):
        assert "ARG TORCH_INDEX=\n" in stages()[name] and "${TORCH_INDEX:+--extra-index-url ${TORCH_INDEX}}" in \
            stages()[name]


def test_no_package_index_is_written_into_the_repository():
    """Where packages come from is the tools' default or the builder's environment, never our files."""
    for name in ("Dockerfile", "docker-compose.yml", "README.md", "deploy/k8s/overlays/gpu/kustomization.yaml"):
        text = (ROOT / name).read_text()
        assert not re.search(r"(index-url|TORCH_INDEX[=:]\s*\"?)\s*https?://", text), name


def test_compose_renders_envoy_with_the_hosts_rate_limits():
    args = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["envoy"]["build"]["args"]
    variables = [f(name) for name in DEFAULT_BUCKETS for f in (rate_variable, burst_variable)]
    assert args == {variable: f"${{{variable}:-}}" for variable in variables}  # unset: empty, the default
    assert all(f"\nARG {variable}\n" in stages()["contracts"] for variable in variables)


def test_services_run_unprivileged_on_a_read_only_root_file_system():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for endpoint in ENDPOINTS.values():
        assert "\nUSER textgen\n" in stages()[endpoint.name]
        assert compose[endpoint.name]["read_only"] is True and compose[endpoint.name]["tmpfs"] == ["/tmp"]
    assert "useradd --uid 10001" in stages()["service"]
    assert not any("TOKEN" in line for line in (ROOT / "Dockerfile").read_text().splitlines()), \
        "no secret in an image: TRAINER_TOKEN comes from the environment"


def test_compose_refuses_to_start_without_a_trainer_token():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    token = re.fullmatch(r"\$\{TRAINER_TOKEN:\?(.+)\}", compose["trainer"]["environment"]["TRAINER_TOKEN"])
    assert token and "export TRAINER_TOKEN=" in token[1]  # `:?` also refuses an empty value
    assert "environment" not in compose["trainer-gpu"]  # it extends the trainer, token and all
    # A default in .env would satisfy `:?` for everyone who never chose a token.
    assert not any(line.strip().startswith("TRAINER_TOKEN") for line in (ROOT / ".env").read_text().splitlines())


def compose_command() -> list[str] | None:
    """Compose v2 (`docker compose`) or v1 (`docker-compose`), whichever this machine has."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_compose_itself_stops_on_the_missing_token_with_the_message():
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose here (CI has none): the test above checks the file")
    environ = {k: v for k, v in os.environ.items() if k != "TRAINER_TOKEN"}
    # Run where .env lies, so that a default there would show up here.
    result = subprocess.run([*command, "config"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "set TRAINER_TOKEN before docker compose up" in result.stderr


def test_only_envoy_publishes_a_port():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {name for name, service in compose.items() if "ports" in service} == {"envoy"}


def test_the_images_listen_on_every_interface_and_the_trainer_image_requires_a_token():
    assert "BIND_ADDRESS=0.0.0.0" in stages()["service"]  # make run's default is loopback
    assert "TRAINER_REQUIRE_AUTH=1" in stages()["trainer"]


@pytest.mark.parametrize("token", ["", "  "])
def test_a_trainer_that_requires_a_token_will_not_start_without_one(token, tmp_path):
    env = base_env({"TRAINER_REQUIRE_AUTH": "1", "TRAINER_TOKEN": token, "MODELS_DIR": str(tmp_path),
                    "TRAINER_PORT": "0"})
    started = subprocess.run([sys.executable, "-m", "services.trainer"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert started.returncode != 0
    assert "TRAINER_TOKEN is empty, and this trainer requires one" in started.stderr, started.stderr[-2000:]
