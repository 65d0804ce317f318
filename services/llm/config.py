import dataclasses
import pathlib

from services.common.base_model import SETTING_HELP
from services.common.config import ServiceConfig, device_field, dtype_field, env_field
from textgen.endpoints import ENDPOINTS

# On a CPU every row pays for the others' share of a step: 16 rows gave no more throughput than 8 and slower first
# tokens. A GPU step costs about the same for 1 row as for dozens (docs/benchmarks.md has both measurements).
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 8, 32


@dataclasses.dataclass(frozen=True)
class LlmConfig(ServiceConfig):
    port: int = env_field(ENDPOINTS["llm"].port_variable, ENDPOINTS["llm"].port, "gRPC port (0 picks a free one)")
    metrics_port: int = env_field("LLM_METRICS_PORT", -1, "Prometheus port; 0 picks a free one, -1 disables")
    base_model: str = env_field("LLM_BASE_MODEL", "", SETTING_HELP)
    device: str = device_field("LLM")
    # bfloat16 reads half the bytes of float32 a token, and CPUs with AVX-512 BF16 compute it natively: decode steps
    # and prefills took less time (docs/benchmarks.md); where torch only emulates it, float32 is faster.
    dtype: str = dtype_field("LLM", "bfloat16 on a GPU that supports it and on a CPU with AVX-512 BF16 or AMX, else "
                                    "float32")
    max_batch_size: int = env_field("LLM_MAX_BATCH_SIZE", 0,
                                    "rows decoded together; 0: 8 on the CPU, 32 on a GPU; 1 turns batching off")
    max_batch_tokens: int = env_field("LLM_MAX_BATCH_TOKENS", 0,
                                      "KV-cache tokens the batch may hold, each row counted at prompt + "
                                      "max_new_tokens; 0: 1024 per row of LLM_MAX_BATCH_SIZE")
    max_queued: int = env_field("LLM_MAX_QUEUED", 64, "requests waiting for a place in the batch; more → 429")
    # 8: as many as the CPU's batch has rows, so a full batch never waits for an adapter it already had; each adapter
    # of the embedded model (rank 16 on every linear layer) holds about 20 MB.
    max_loaded_adapters: int = env_field("LLM_MAX_LOADED_ADAPTERS", 8,
                                         "adapters held in memory; a request for another loads it, and the least "
                                         "recently used goes")
    adapter_load_timeout_s: float = env_field("LLM_ADAPTER_LOAD_TIMEOUT_S", 60.0,
                                              "a request waits this long for its adapter to load, then fails (503)")
    batch_window_ms: float = env_field("LLM_BATCH_WINDOW_MS", 10.0,
                                       "a batch starting from empty stays open while requests arrive less than "
                                       "this apart (at most 10 windows)")
    prefix_cache_tokens: int = env_field("LLM_PREFIX_CACHE_TOKENS", 4096,
                                         "prompt tokens whose keys and values are kept, so that a prompt starting "
                                         "like a recent one prefills only the rest (least recently used go first); "
                                         "0 turns prefix caching off")
    # 512: a group of new prompts is no longer padded to its longest, and the rows decoding wait for at most 512
    # prompt tokens between two steps; 256 and 1024 measured worse or the same (docs/benchmarks.md).
    prefill_chunk_tokens: int = env_field("LLM_PREFILL_CHUNK_TOKENS", 512,
                                          "prompt tokens prefilled per engine step (padding included) between two "
                                          "decode steps of the running rows, so that none waits for a whole "
                                          "prompt; 0 prefills each prompt whole")
    # torch's default (a thread per core) suits a quiet machine; where other work shares the cores (training beside
    # serving, a test suite) threads wait for each other and one is faster (docs/benchmarks.md).
    torch_threads: int = env_field("LLM_TORCH_THREADS", 0, "torch intra-op threads; 0 keeps torch's default, one "
                                                           "per core; 1 where other work shares the cores")
    pack_weights: bool = env_field("LLM_PACK_WEIGHTS", True, "on the CPU, linear layers' weights packed once for "
                                                             "oneDNN instead of at every call (services/llm/model/"
                                                             "projection.py); off for comparison")
    responses_db: str = env_field("LLM_RESPONSES_DB", "", "the SQLite file of stored responses (/v1/responses, "
                                                         "previous_response_id); empty: MODELS_DIR/responses.sqlite")
    responses_max_stored: int = env_field("LLM_RESPONSES_MAX_STORED", 10_000, "responses kept; past it the oldest "
                                                                               "go")
    # Off by default: int8 reads half the bytes of bfloat16 a decode step, but only its 1- and 2-row steps gain, and
    # it changes the answers a little (docs/benchmarks.md).
    quantization: str = env_field("LLM_QUANTIZATION", "none", "none, or int8: on the CPU, linear weights also as "
                                                              "int8 (a scale per output channel) for decode steps of "
                                                              "1 or 2 rows")

    @property
    def responses_db_path(self) -> pathlib.Path:
        return pathlib.Path(self.responses_db) if self.responses_db else self.models_dir / "responses.sqlite"

    def batch_size_for(self, on_gpu: bool) -> int:
        return self.max_batch_size or (GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE)

    def batch_tokens_for(self, on_gpu: bool) -> int:
        return self.max_batch_tokens or 1024 * self.batch_size_for(on_gpu)
