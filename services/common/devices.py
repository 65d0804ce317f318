"""Where the llm service and the trainer run their model: LLM_DEVICE / TRAINER_DEVICE and LLM_DTYPE /
TRAINER_DTYPE, resolved once at start-up into a torch device and dtype, or a one-line error saying what is wrong.

    device: auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda, cuda:N
    dtype:  auto (bfloat16 on a GPU that supports it and on a CPU that computes it natively: AVX-512 BF16 or AMX;
            float32 otherwise), float32, bfloat16, float16
"""
import dataclasses
import pathlib

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


class DeviceError(SystemExit):
    """An unusable device or dtype setting: the process exits with this message instead of a traceback."""


@dataclasses.dataclass(frozen=True)
class Placement:
    device: "torch.device"  # noqa: F821
    dtype: "torch.dtype"  # noqa: F821

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def dtype_name(self) -> str:
        """e.g. "bfloat16" (torch writes "torch.bfloat16")."""
        return str(self.dtype).removeprefix("torch.")

    def describe(self) -> str:
        """e.g. "cuda:0 bfloat16" or "cpu float32", for status messages and job records."""
        return f"{self.device} {self.dtype_name}"


def resolve_device(setting: str, variable: str):
    import torch

    setting = setting.strip().lower()
    if setting == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if setting == "cpu":
        return torch.device("cpu")
    kind, _, index = setting.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"{variable}={setting!r} is not a device: use {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise DeviceError(f"{variable}={setting!r} but torch sees no CUDA GPU here (torch {torch.__version__}, "
                          f"built for CUDA {torch.version.cuda or 'no CUDA: a CPU wheel'}); use {variable}=cpu or "
                          "auto, or run where a GPU and a CUDA build of torch are present")
    number = int(index or 0)
    if number >= torch.cuda.device_count():
        raise DeviceError(f"{variable}={setting!r}: there are {torch.cuda.device_count()} CUDA device(s), "
                          f"numbered from 0")
    return torch.device("cuda", number)


def cpu_computes_bfloat16(cpuinfo: pathlib.Path = pathlib.Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), which make a bfloat16 model about twice as
    fast as a float32 one on it; without them torch emulates bfloat16, which gains nothing (read the flags, never
    assume: machines of one kind differ)."""
    try:
        flags = {flag for line in cpuinfo.read_text().splitlines() if line.startswith("flags")
                 for flag in line.split(":", 1)[1].split()}
    except OSError:  # not Linux
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_dtype(setting: str, device, variable: str):
    """auto picks bfloat16 on a CPU that computes it natively: measured faster there for serving (the llm service's
    weights in bfloat16) and for training (the trainer's bfloat16 autocast, bench/bench_sft_step.py)."""
    import torch

    setting = setting.strip().lower()
    if setting not in DTYPE_CHOICES:
        raise DeviceError(f"{variable}={setting!r} is not a dtype: use one of {', '.join(DTYPE_CHOICES)}")
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    if setting == "auto":
        if device.type == "cpu":
            return torch.bfloat16 if cpu_computes_bfloat16() else torch.float32
        return torch.bfloat16 if bf16_ok else torch.float32
    if setting == "bfloat16" and device.type == "cuda" and not bf16_ok:
        raise DeviceError(f"{variable}=bfloat16 but {torch.cuda.get_device_name(device)} does not support it; use "
                          "float16 or float32")
    if setting == "float16" and device.type == "cpu":
        raise DeviceError(f"{variable}=float16 on the CPU is slow and unstable in torch; use float32 or bfloat16")
    return getattr(torch, setting)


def resolve(device_setting: str, dtype_setting: str, prefix: str) -> Placement:
    """`prefix` names the variables in messages: "LLM" → LLM_DEVICE and LLM_DTYPE."""
    device = resolve_device(device_setting, f"{prefix}_DEVICE")
    return Placement(device, resolve_dtype(dtype_setting, device, f"{prefix}_DTYPE"))
