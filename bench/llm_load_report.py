"""bench/bench_llm_load.py's tables: every load level and mode, requests alone, and the ratios between the modes
that differ in one setting (the prefix cache on / off, chunked / whole prefill, batching on / off)."""
from llm_load_modes import CHUNKED


def report(label: str, cap: float, table: dict, by_mode: dict, args) -> None:
    print(f"\n{label}, {args.workload} workload, {args.new_tokens} new tokens, Poisson arrivals for "
          f"{args.duration:.0f} s per cell; capacity {cap:.3f} req/s\n")
    print("| load | mode | requests | throughput req/s | latency p50 / p99 s | TTFT p50 / p99 s | TTFT p99 / alone "
          "latency | longest gap p50 / p99 s |")
    print("|---|---|---|---|---|---|---|---|")
    for (level, mode), row in table.items():
        print(f"| {level:.0%} | {mode} | {row['requests']} | {row['throughput']:.3f} | {row['p50']:.2f} / "
              f"{row['p99']:.2f} | {row['ttft50']:.2f} / {row['ttft99']:.2f} | "
              f"{row['ttft99'] / by_mode[mode]['latency']:.2f} | {row['gap50']:.2f} / {row['gap99']:.2f} |")
    print("\n| mode | alone: TTFT cold s | TTFT second question s | ratio | latency s |\n|---|---|---|---|---|")
    for mode, row in by_mode.items():  # the mixed workload asks no second question (nan)
        print(f"| {mode} | {row['cold']:.3f} | {row['warm']:.3f} | {row['warm'] / row['cold']:.2f} | "
              f"{row['latency']:.2f} |")
    modes = {mode for _, mode in table}
    levels = {level for level, _ in table}
    # The cache on / off, each pair prefilling alike: the defaults, and each chunk size run both ways.
    pairs = [("continuous", "no-prefix-cache")] + [
        (mode, f"no-prefix-cache-{mode}") for mode in sorted(modes) if mode.startswith("chunked-")]
    for on_mode, off_mode in pairs:
        if 0.8 in levels and {on_mode, off_mode} <= modes:
            on, off = table[0.8, on_mode], table[0.8, off_mode]
            alone_on = by_mode[on_mode]
            print(f"\nat 80%, prefix cache on / off ({on_mode} / {off_mode}): latency p99 "
                  f"{on['p99'] / off['p99']:.2f} (target <= 0.6), throughput "
                  f"{on['throughput'] / off['throughput']:.2f} (target >= 1.0), TTFT p99 "
                  f"{on['ttft99'] / off['ttft99']:.2f}; alone, second question / cold TTFT "
                  f"{alone_on['warm'] / alone_on['cold']:.2f} (target <= 0.3)")
    for mode in sorted(modes):  # each chunk size, the cache on, against the defaults with the cache off and on
        chunked = CHUNKED.fullmatch(mode)
        if 0.8 not in levels or chunked is None or chunked[1]:
            continue
        for whole in ("no-prefix-cache", "continuous"):
            if whole in modes:
                on, off = table[0.8, mode], table[0.8, whole]
                print(f"at 80%, {mode} / {whole}: latency p99 {on['p99'] / off['p99']:.2f}, p50 "
                      f"{on['p50'] / off['p50']:.2f}, throughput {on['throughput'] / off['throughput']:.2f}, "
                      f"TTFT p99 {on['ttft99'] / off['ttft99']:.2f}, longest gap p99 {on['gap99'] / off['gap99']:.2f}")
    if 0.8 in levels and {"continuous", "none"} <= modes:
        on, off = table[0.8, "continuous"], table[0.8, "none"]
        print(f"at 80%: batching on / off: TTFT p99 {on['ttft99'] / off['ttft99']:.2f}, latency p99 "
              f"{on['p99'] / off['p99']:.2f}, throughput {on['throughput'] / off['throughput']:.2f}")
    print(flush=True)
