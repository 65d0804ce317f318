"""The reliability suites (suites/), each run in its quick version: REST fuzzing through Envoy, gRPC fuzzing of
every service, a mixed load twice with a memory bound, and the faults. Each prints its figures and exits non-zero
when an expectation fails; the full versions run on demand (suites/README.md)."""
import subprocess
import sys

import pytest

from devtools.processes import base_env
from textgen.paths import ROOT


@pytest.mark.parametrize("suite", ["fuzz_rest", "fuzz_grpc", "load", "faults"])
def test_quick_suite(suite):
    result = subprocess.run([sys.executable, f"suites/{suite}.py", "--quick"], cwd=ROOT, env=base_env({}),
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
