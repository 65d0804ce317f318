import dataclasses

from services.common import devices
from services.common.base_model import SETTING_HELP, BaseModelSpec, choose
from services.common.config import ServiceConfig, device_field, dtype_field, env_field
from textgen import uploads
from textgen.endpoints import ENDPOINTS


@dataclasses.dataclass(frozen=True)
class TrainerConfig(ServiceConfig):
    port: int = env_field(ENDPOINTS["trainer"].port_variable, ENDPOINTS["trainer"].port, "gRPC port (0 picks a free one)")
    metrics_port: int = env_field("TRAINER_METRICS_PORT", -1, "Prometheus port; 0 picks a free one, -1 disables")
    base_model: str = env_field("LLM_BASE_MODEL", "", SETTING_HELP)
    squad_dataset: str = env_field("SQUAD_DATASET", "",
                                   "unset: rajpurkar/squad when cached or reachable, else the shipped SQuAD v1.1 "
                                   "train slice data/squad_train_slice; or a Hub id, a .json/.jsonl file or a folder")
    llm_addr: str = env_field(ENDPOINTS["llm"].address_variable, ENDPOINTS["llm"].address({}),
                              "llm service told to reload adapters after publishing")
    max_queued: int = env_field("TRAINER_MAX_QUEUED", 4, "queued jobs beyond the running one; more → 429")
    keep_versions: int = env_field("TRAINER_KEEP_VERSIONS", 10, "versions kept of each adapter: publishing one more "
                                                                "deletes the oldest (never the one serving)")
    eval_examples: int = env_field("TRAINER_EVAL_EXAMPLES", 50, "validation questions evaluated after each job")
    eval_max_new_tokens: int = env_field("TRAINER_EVAL_MAX_NEW_TOKENS", 64, "tokens generated per eval answer")
    fine_tune_max_tokens: int = env_field("TRAINER_FINE_TUNE_MAX_TOKENS", 1024,
                                          "tokens of a fine-tuning job's chat example trained on (at most the model's "
                                          "window); a longer one is truncated, and the job's events say how many were")
    max_upload_bytes: int = env_field(uploads.MAX_UPLOAD_BYTES_VARIABLE, uploads.MAX_UPLOAD_BYTES,
                                      "the largest file POST /v1/files takes (Envoy's limit on that route is the same "
                                      "setting, read where the gateway is rendered)")
    torch_threads: int = env_field("TRAINER_TORCH_THREADS", 0,
                                   "torch intra-op threads for training; 0 keeps torch's default (all cores)")
    processes: int = env_field("TRAINER_PROCESSES", 1, "data-parallel training processes per job (DDP: gloo on "
                                                       "CPUs, NCCL on GPUs, one GPU each)")
    device: str = device_field("TRAINER")
    dtype: str = dtype_field("TRAINER", "bfloat16 on a GPU that supports it and on a CPU with AVX-512 BF16 or AMX, "
                                        "else float32", "mixed precision: ")

    def base(self) -> BaseModelSpec:
        return choose(self.base_model, self.models_dir)

    def placement(self) -> devices.Placement:
        """TRAINER_DEVICE and TRAINER_DTYPE resolved; an unusable setting exits with a one-line message."""
        return devices.resolve(self.device, self.dtype, "TRAINER")

    def prepare_torch(self) -> devices.Placement:
        """Before training in this process: torch's threads and current CUDA device; returns the placement.

        On cores shared with other busy processes a second torch thread spin-waits and slows small models down many
        times over; TRAINER_TORCH_THREADS=1 avoids that (see services/llm's measurements). accelerate trains on the
        current CUDA device, so cuda:N is made current here."""
        import os

        import torch

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        placement = self.placement()
        if placement.on_gpu and "LOCAL_RANK" in os.environ:  # one of several processes: one GPU each
            placement = devices.Placement(torch.device("cuda", int(os.environ["LOCAL_RANK"])), placement.dtype)
        if placement.on_gpu:
            torch.cuda.set_device(placement.device)
        return placement
