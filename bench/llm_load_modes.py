"""bench/bench_llm_load.py's modes: the llm service's settings each one runs with."""
import re

MODES = {"continuous": {},
         "no-prefix-cache": {"LLM_PREFIX_CACHE_TOKENS": "0"},
         "none": {"LLM_MAX_BATCH_SIZE": "1"},
         "rows-16": {"LLM_MAX_BATCH_SIZE": "16"},
         "rows-32": {"LLM_MAX_BATCH_SIZE": "32"},
         "kv-budget": {"LLM_MAX_BATCH_SIZE": "1000"},  # LLM_MAX_BATCH_TOKENS from --kv-budget
         "whole-prefill": {"LLM_PREFILL_CHUNK_TOKENS": "0"}}
CHUNKED = re.compile(r"(no-prefix-cache-)?chunked-(\d+)")  # chunked-64, no-prefix-cache-chunked-64, ...


def settings_of(mode: str) -> dict[str, str]:
    if mode in MODES:
        return MODES[mode]
    chunked = CHUNKED.fullmatch(mode)
    if chunked is None:
        raise SystemExit(f"unknown mode {mode!r}: {', '.join(MODES)}, chunked-N or no-prefix-cache-chunked-N")
    return {**(MODES["no-prefix-cache"] if chunked[1] else {}), "LLM_PREFILL_CHUNK_TOKENS": chunked[2]}
