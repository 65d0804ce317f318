"""LLM_DEVICE / TRAINER_DEVICE and their dtypes: resolved at start-up into a device and dtype, or one line saying
what is wrong. CI has no GPU: there `auto` means the CPU, and asking for CUDA is a clear start-up error."""
import subprocess
import sys

import pytest
import torch

from devtools.processes import base_env, free_port
from services.common.devices import DeviceError, cpu_computes_bfloat16, resolve
from services.trainer.training.models import device_options
from textgen.paths import ROOT

NO_GPU = not torch.cuda.is_available()


@pytest.mark.skipif(not NO_GPU, reason="what auto means without a GPU")
def test_auto_is_the_cpu_without_a_gpu_and_training_there_autocasts_to_bfloat16_only_where_it_computes_it():
    placement = resolve("auto", "auto", "TRAINER")
    native = cpu_computes_bfloat16()
    assert (placement.device, placement.on_gpu) == (torch.device("cpu"), False)
    assert placement.describe() == ("cpu bfloat16" if native else "cpu float32")
    assert device_options(placement) == {"use_cpu": True, "bf16": native, "fp16": False}
    assert device_options(resolve("auto", "float32", "TRAINER"))["bf16"] is False
    assert resolve("cpu", "bfloat16", "LLM").dtype == torch.bfloat16  # torch runs bf16 on the CPU


def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n\n"
                       "processor\t: 1\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_computes_bfloat16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 amx_bf16 amx_tile\n")
    assert cpu_computes_bfloat16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")  # bfloat16 emulated only
    assert not cpu_computes_bfloat16(cpuinfo)
    assert not cpu_computes_bfloat16(tmp_path / "absent")


@pytest.mark.skipif(not NO_GPU, reason="what auto means without a GPU")
def test_both_services_take_bfloat16_by_default_where_the_cpu_computes_it():
    expected = torch.bfloat16 if cpu_computes_bfloat16() else torch.float32
    assert resolve("auto", "auto", "LLM").dtype == expected
    assert resolve("cpu", "auto", "TRAINER").dtype == expected
    assert resolve("cpu", "float32", "TRAINER").dtype == torch.float32  # a setting stands


@pytest.mark.parametrize("device, dtype, message", [
    ("tpu", "auto", "LLM_DEVICE='tpu' is not a device: use auto, cpu, cuda or cuda:N"),
    ("cuda:first", "auto", "LLM_DEVICE='cuda:first' is not a device"),
    ("cpu", "int8", "LLM_DTYPE='int8' is not a dtype: use one of auto, float32, bfloat16, float16"),
    ("cpu", "float16", "LLM_DTYPE=float16 on the CPU"),
] + ([("cuda", "auto", "torch sees no CUDA GPU here"), ("cuda:3", "auto", "torch sees no CUDA GPU here")]
     if NO_GPU else [(f"cuda:{torch.cuda.device_count()}", "auto", "CUDA device(s), numbered from 0")]))
def test_an_unusable_setting_is_one_line_naming_the_variable(device, dtype, message):
    with pytest.raises(DeviceError) as error:
        resolve(device, dtype, "LLM")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a GPU")
@pytest.mark.parametrize("module, variables", [
    ("services.llm", {"LLM_DEVICE": "cuda", "LLM_PORT": "0"}),
    ("services.trainer", {"TRAINER_DEVICE": "cuda"}),
])
def test_a_service_asked_for_cuda_without_a_gpu_exits_with_that_line(module, variables, tmp_path):
    env = base_env({"MODELS_DIR": str(tmp_path), "TRAINER_PORT": str(free_port()), **variables})
    result = subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "torch sees no CUDA GPU here" in result.stderr and "Traceback" not in result.stderr
