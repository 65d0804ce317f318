import dataclasses

from services.common.base_model import SETTING_HELP
from services.common.config import ServiceConfig, env_field
from textgen.endpoints import ENDPOINTS

# Measured on 2 CPU cores: at 80% of capacity (bench/bench_llm_load.py, GPT-2 size in bfloat16, 442 requests) 16
# rows against 8 gave the same throughput with first tokens at p99 3.36 s instead of 1.96 s and latency p99 9.64 s
# instead of 4.66 s: every row pays for the others' share of a step. (SmolLM2 through bench/anchor.py's open loop
# measured the other way, 3.97 s against 11.0 s, but at a rate taken from 16 requests' throughput, likely above 80%
# of the real capacity, where waiting for a free row dominates; docs/benchmarks.md.) A GPU step costs about the
# same for 1 row as for dozens, so it takes many more (bench/gpu_check.py: tokens/s at 1, 8, 32).
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 8, 32


@dataclasses.dataclass(frozen=True)
class LlmConfig(ServiceConfig):
    port: int = env_field(ENDPOINTS["llm"].port_variable, ENDPOINTS["llm"].port, "gRPC port (0 picks a free one)")
    metrics_port: int = env_field("LLM_METRICS_PORT", -1, "Prometheus port; 0 picks a free one, -1 disables")
    base_model: str = env_field("LLM_BASE_MODEL", "", SETTING_HELP)
    batching: str = env_field("LLM_BATCHING", "continuous",
                              "continuous: requests join the running batch at the next token; static: a batch "
                              "runs until its last row is done (kept for comparison)")
    device: str = env_field("LLM_DEVICE", "auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    # bfloat16 reads half the bytes of float32 a token: on this project's AVX-512 BF16 CPU a decode step of 8 rows
    # took 0.7 as long and a prefill of 8 prompts half (docs/benchmarks.md); where torch only emulates it, float32.
    dtype: str = env_field("LLM_DTYPE", "auto", "auto (bfloat16 on a GPU that supports it and on a CPU with AVX-512 "
                                                "BF16 or AMX, else float32), float32, bfloat16 or float16")
    max_batch_size: int = env_field("LLM_MAX_BATCH_SIZE", 0,
                                    "rows decoded together; 0: 8 on the CPU, 32 on a GPU; 1 turns batching off")
    max_batch_tokens: int = env_field("LLM_MAX_BATCH_TOKENS", 0,
                                      "KV-cache tokens the batch may hold, each row counted at prompt + "
                                      "max_new_tokens; 0: 1024 per row of LLM_MAX_BATCH_SIZE")
    max_queued: int = env_field("LLM_MAX_QUEUED", 64, "requests waiting for a place in the batch; more → 429")
    batch_window_ms: float = env_field("LLM_BATCH_WINDOW_MS", 10.0,
                                       "a batch starting from empty stays open while requests arrive less than "
                                       "this apart (at most 10 windows)")
    prefix_cache_tokens: int = env_field("LLM_PREFIX_CACHE_TOKENS", 4096,
                                         "prompt tokens whose keys and values are kept, so that a prompt starting "
                                         "like a recent one prefills only the rest (least recently used go first); "
                                         "0 turns prefix caching off")
    # 512: a group of new prompts is no longer padded to its longest (8 fresh SQuAD prompts of 94 to 602 tokens), and
    # the rows decoding wait for at most 512 prompt tokens between two steps. With bfloat16 and two threads, 8 clients
    # sending fresh passages (bench/anchor.py) got their first token at p50 0.54 s instead of 3.05 s, and 52 tokens/s
    # instead of 45; 256 was slower (41 tokens/s), 1024 about the same (docs/benchmarks.md). In float32 on one thread
    # chunks had not helped (bench/bench_llm_load.py); 0 prefills each prompt whole, as then.
    prefill_chunk_tokens: int = env_field("LLM_PREFILL_CHUNK_TOKENS", 512,
                                          "prompt tokens prefilled per engine step (padding included) between two "
                                          "decode steps of the running rows, so that none waits for a whole "
                                          "prompt; 0 prefills each prompt whole")
    # torch's default (a thread per core) suits a quiet machine: on 2 cores two threads prefilled 8 prompts in half
    # the time of one. Where other work shares the cores (training beside serving, a test suite), threads wait for
    # each other: there two threads made GPT-2 decoding 3-4x slower than one, so set 1 (docs/benchmarks.md).
    torch_threads: int = env_field("LLM_TORCH_THREADS", 0, "torch intra-op threads; 0 keeps torch's default, one "
                                                           "per core; 1 where other work shares the cores")
    pack_weights: bool = env_field("LLM_PACK_WEIGHTS", True, "on the CPU, linear layers' weights packed once for "
                                                             "oneDNN instead of at every call (services/llm/"
                                                             "packed_linear.py); off for comparison")
    # Off by default: int8 reads half the bytes of bfloat16 a decode step, but only its 1- and 2-row steps gain
    # (docs/benchmarks.md), and it changes the answers a little.
    quantization: str = env_field("LLM_QUANTIZATION", "none", "none, or int8: on the CPU, linear weights also as "
                                                              "int8 (a scale per output channel) for decode steps of "
                                                              "1 or 2 rows")

    def batch_size_for(self, on_gpu: bool) -> int:
        return self.max_batch_size or (GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE)

    def batch_tokens_for(self, on_gpu: bool) -> int:
        return self.max_batch_tokens or 1024 * self.batch_size_for(on_gpu)
