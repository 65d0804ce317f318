"""make images and make compose-check without the Docker engine they need say so and stop; the Debian mirror for
the local base image is the host apt's. The images themselves are built and run by make compose-check, which CI
runs after make test (.ci/run)."""
import subprocess
import sys

import pytest

from devtools.images import debian_mirror
from devtools.processes import base_env
from textgen.paths import ROOT


@pytest.mark.parametrize("module", ["devtools.images", "devtools.compose_check"])
def test_without_an_engine_both_say_so_and_stop(module, tmp_path):
    env = base_env({"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    result = subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "no Docker engine answers" in result.stderr and ".ci/docker-engine" in result.stderr, result.stderr


def test_an_unknown_image_is_named():
    result = subprocess.run([sys.executable, "-m", "devtools.images", "lmm"], cwd=ROOT, env=base_env({}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no such image: lmm; the images are baseline, rnn, llm" in result.stderr


def test_the_local_base_image_comes_from_the_mirror_the_hosts_apt_uses():
    deb822 = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    one_line = "deb [signed-by=/usr/share/keyrings/k.gpg] https://mirror.example/debian/ bookworm main\n"
    assert debian_mirror(deb822) == "http://mirror.example/debian"
    assert debian_mirror(one_line) == "https://mirror.example/debian"
    assert debian_mirror("URIs: http://mirror.example/debian-security\n") is None


def test_ci_runs_the_compose_check_after_the_tests():
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert steps.index("make test") < steps.index(".ci/docker-engine") < steps.index("make compose-check")
