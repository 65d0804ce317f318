"""bench/anchor.py's tables: ours against llama.cpp as ratios with their targets, and the weight bytes each server
reads per second against the machine's memory bandwidth."""
import dataclasses
import pathlib
import time


def level(rows: list[dict], concurrency: int) -> dict:
    return next(row for row in rows if row.get("concurrency") == concurrency)


@dataclasses.dataclass
class Ratio:
    what: str
    ours: float
    theirs: float
    target: str

    def line(self) -> str:
        return (f"| {self.what} | {self.ours:.3g} | {self.theirs:.3g} | {self.ours / self.theirs:.2f}x | "
                f"{self.target} |")


def comparisons(ours_rows: list[dict], theirs_rows: list[dict], concurrency: tuple[int, ...]) -> list[Ratio]:
    low, high = min(concurrency), max(concurrency)
    a_low, b_low, a_high, b_high = (level(ours_rows, low), level(theirs_rows, low), level(ours_rows, high),
                                    level(theirs_rows, high))
    return [Ratio(f"out tok/s, c={high}", a_high["output_throughput"], b_high["output_throughput"], ">= 1.0"),
            Ratio(f"out tok/s, c={low}", a_low["output_throughput"], b_low["output_throughput"], ">= 0.8"),
            Ratio(f"ITL p50 ms, c={low}", a_low["p50_itl"] * 1000, b_low["p50_itl"] * 1000, "<= 1.25"),
            Ratio(f"TPOT p50 ms, c={low}", a_low["p50_tpot"] * 1000, b_low["p50_tpot"] * 1000, ""),
            Ratio(f"TTFT p50 s, c={high}", a_high["p50_ttft"], b_high["p50_ttft"], "<= 1.5"),
            Ratio(f"TTFT p99 s, c={high}", a_high["p99_ttft"], b_high["p99_ttft"], ""),
            Ratio(f"E2E p50 s, c={high}", a_high["p50_e2e"], b_high["p50_e2e"], "")]


def parameter_count(weights: pathlib.Path) -> int:
    """The parameters stored in a safetensors file (a tied embedding once: once per token it is read, as the head)."""
    import math

    from safetensors import safe_open

    with safe_open(weights, "pt") as stored:
        return sum(math.prod(stored.get_slice(name).get_shape()) for name in stored.keys())


def memory_bandwidth(threads: int) -> float:
    """Bytes/s this machine reads from memory: the best of a few sums over a 512 MB tensor (far past any cache)."""
    import torch

    torch.set_num_threads(threads)
    data = torch.ones(128 * 1024 * 1024)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.numel() * data.element_size() / best


def bandwidth_report(results: dict[str, list[dict]], weight_bytes: dict[str, int], threads: int,
                     concurrency: int) -> None:
    """Weight bytes read per second at concurrency 1 (every weight once per token: the weights / TPOT p50)."""
    bandwidth = memory_bandwidth(threads)
    print(f"\nmemory read bandwidth ({threads} threads, sum over 512 MB): {bandwidth / 1e9:.1f} GB/s")
    print("| server | weight bytes | TPOT p50 ms, c=1 | weights read GB/s | share of the bandwidth |")
    print("|---|---|---|---|---|")
    for label, rows in results.items():
        kind = label.split()[1] if len(label.split()) == 2 else None
        if kind in weight_bytes:
            tpot = level(rows, concurrency)["p50_tpot"]
            rate = weight_bytes[kind] / tpot
            print(f"| {label} | {weight_bytes[kind] / 1e6:.0f} MB | {tpot * 1000:.1f} | {rate / 1e9:.1f} | "
                  f"{rate / bandwidth:.0%} |")


def report(title: str, ratios: list[Ratio]) -> None:
    print(f"\n{title}\n| measure | ours | llama.cpp | ours / llama.cpp | target |\n|---|---|---|---|---|")
    for ratio in ratios:
        print(ratio.line())
