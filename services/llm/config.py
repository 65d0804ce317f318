import dataclasses

from services.common.config import ServiceConfig, env_field
from textgen.endpoints import ENDPOINTS


@dataclasses.dataclass(frozen=True)
class LlmConfig(ServiceConfig):
    port: int = env_field(ENDPOINTS["llm"].port_variable, ENDPOINTS["llm"].port, "gRPC port (0 picks a free one)")
    metrics_port: int = env_field("LLM_METRICS_PORT", -1, "Prometheus port; 0 picks a free one, -1 disables")
    base_model: str = env_field("LLM_BASE_MODEL", "openai-community/gpt2", "Hub id or local model folder")
    batching: str = env_field("LLM_BATCHING", "continuous",
                              "continuous: requests join the running batch at the next token; static: a batch "
                              "runs until its last row is done (kept for comparison)")
    max_batch_size: int = env_field("LLM_MAX_BATCH_SIZE", 8, "rows decoded together; 1 turns batching off")
    max_batch_tokens: int = env_field("LLM_MAX_BATCH_TOKENS", 16384,
                                      "KV-cache tokens the batch may hold, each row counted at prompt + max_new_tokens")
    max_queued: int = env_field("LLM_MAX_QUEUED", 64, "requests waiting for a place in the batch; more → 429")
    batch_window_ms: float = env_field("LLM_BATCH_WINDOW_MS", 10.0,
                                       "static batching only: a batch stays open while requests arrive less than "
                                       "this apart")
    # One thread by default: the services share the machine's cores, and on a busy 2-core machine two torch
    # threads made GPT-2 decoding 3-4x slower than one (bench/bench_llm.py --threads 2 to compare).
    torch_threads: int = env_field("LLM_TORCH_THREADS", 1, "torch intra-op threads; 0 keeps torch's default")
