"""The llm service's own Prometheus metrics, recorded by the engine thread (every service's per-method request counts
and latencies are services/common/metrics.py's)."""
import prometheus_client

_WAIT_BUCKETS = (.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

QUEUE_LENGTH = prometheus_client.Gauge("textgen_llm_queue_length", "Requests waiting for a place in the batch.")
QUEUE_SECONDS = prometheus_client.Histogram("textgen_llm_queue_seconds", "Time from arrival to admission.",
                                            buckets=_WAIT_BUCKETS)
FIRST_TOKEN_SECONDS = prometheus_client.Histogram(
    "textgen_llm_time_to_first_token_seconds", "Time from arrival to the first generated token.",
    buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
OCCUPANCY = prometheus_client.Histogram("textgen_llm_batch_occupancy", "Rows decoded together, per decode step.",
                                        buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64))
GENERATED_TOKENS = prometheus_client.Counter("textgen_llm_generated_tokens_total",
                                             "Tokens generated, by how the answer ended.", ["stop"])
# The hit rate is hits / lookups; the share of prompt tokens not prefilled is saved / prompt tokens.
PREFIX_LOOKUPS = prometheus_client.Counter("textgen_llm_prefix_cache_lookups_total",
                                           "Admitted requests whose prompt was looked up in the prefix cache.")
PREFIX_HITS = prometheus_client.Counter("textgen_llm_prefix_cache_hits_total",
                                        "Admitted requests that started from a cached prefix.")
PREFIX_SAVED_TOKENS = prometheus_client.Counter("textgen_llm_prefix_cache_saved_tokens_total",
                                                "Prompt tokens taken from the prefix cache instead of prefilled.")
PROMPT_TOKENS = prometheus_client.Counter("textgen_llm_prompt_tokens_total", "Prompt tokens of admitted requests.")
PREFIX_CACHE_TOKENS = prometheus_client.Gauge("textgen_llm_prefix_cache_tokens",
                                              "Tokens whose keys and values the prefix cache holds.")
PREFIX_CACHE_MAX_TOKENS = prometheus_client.Gauge("textgen_llm_prefix_cache_max_tokens",
                                                  "LLM_PREFIX_CACHE_TOKENS: the prefix cache's bound (0: off).")
# Per adapter (a name per published adapter: as many labels as adapters).
ADAPTER_REQUESTS = prometheus_client.Counter("textgen_llm_adapter_requests_total", "Requests served, by adapter.",
                                             ["adapter"])
ADAPTER_GENERATED_TOKENS = prometheus_client.Counter("textgen_llm_adapter_generated_tokens_total",
                                                     "Tokens generated, by adapter.", ["adapter"])
ADAPTER_LOADS = prometheus_client.Counter("textgen_llm_adapter_loads_total", "Adapter versions loaded, by adapter "
                                          "and outcome (loaded, failed).", ["adapter", "outcome"])
ADAPTER_LOAD_SECONDS = prometheus_client.Histogram("textgen_llm_adapter_load_seconds", "Time to load an adapter "
                                                   "version into the model.", buckets=(.01, .025, .05, .1, .25, .5,
                                                                                       1, 2.5, 5, 10, 30, 60))
ADAPTERS_LOADED = prometheus_client.Gauge("textgen_llm_adapters_loaded", "Adapters held in memory now (at most "
                                          "LLM_MAX_LOADED_ADAPTERS, plus any still finishing requests).")
