"""bench/gpu_check.py in its CPU smoke mode (CI has no GPU): it runs end to end, the service's greedy answers
equal in-process `generate`'s, and every figure of the GPU report is printed."""
import subprocess
import sys

from devtools.processes import base_env
from textgen.paths import ROOT


def test_the_gpu_check_runs_in_smoke_mode_and_the_service_matches_in_process_generate():
    result = subprocess.run([sys.executable, "bench/gpu_check.py", "--smoke"], cwd=ROOT, env=base_env({}),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = result.stdout
    assert "greedy answers, service == in-process generate: 4/4" in report
    for line in ("placement: ", "single request: service", "8 clients: service", "8 clients: batching on",
                 "in-process tokens/s: batch 1:", "batch 32:", "SFT step: LoRA"):
        assert line in report, line
