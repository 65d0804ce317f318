"""What bench/bench_serving.py reports for a level: percentiles of each measure, throughput, goodput within the
SLOs, and the terminal table."""
import dataclasses
import math
import statistics

from devtools.serving_requests import Result


@dataclasses.dataclass(frozen=True)
class Slo:
    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None

    def met(self, result: Result) -> bool:
        return result.ok and all(limit is None or not value > limit for limit, value in (
            (self.ttft, result.ttft), (self.tpot, result.tpot), (self.e2e, result.e2e)))



def percentile(values: list[float], q: float) -> float:
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarize(results: list[Result], seconds: float, slo: Slo) -> dict:
    done = [r for r in results if r.ok]
    summary = {"requests": len(results), "failed": len(results) - len(done), "seconds": round(seconds, 3),
               "request_throughput": len(done) / seconds,
               "output_throughput": sum(r.output_tokens for r in done) / seconds,
               "mean_output_tokens": statistics.fmean(r.output_tokens for r in done) if done else math.nan,
               "goodput": sum(slo.met(r) for r in done) / seconds}
    for name, values in (("ttft", [r.ttft for r in done]), ("tpot", [r.tpot for r in done]),
                         ("itl", [gap for r in done for gap in r.itl]), ("e2e", [r.e2e for r in done])):
        clean = [v for v in values if not math.isnan(v)]
        summary[f"mean_{name}"] = statistics.fmean(clean) if clean else math.nan
        for q in (50, 90, 99):
            summary[f"p{q}_{name}"] = percentile(values, q)
    errors = sorted({r.error for r in results if not r.ok})
    if errors:
        summary["errors"] = errors[:5]
    return summary



def level_name(row: dict) -> str:
    return f"c={row['concurrency']}" if "concurrency" in row else f"{row['rate']}/s"


def table(rows: list[dict]) -> str:
    header = (f"{'server':22}{'level':>8}{'ok':>6}{'req/s':>7}{'out tok/s':>10}{'TTFT p50':>9}{'p90':>7}{'p99':>7}"
              f"{'TPOT p50':>9}{'ITL p50':>8}{'p99':>7}{'E2E p50':>8}{'p99':>7}{'goodput':>8}")
    lines = [header]
    for row in rows:
        ms = lambda key: f"{row[key] * 1000:.0f}" if not math.isnan(row[key]) else "-"  # noqa: E731
        s = lambda key: f"{row[key]:.2f}" if not math.isnan(row[key]) else "-"  # noqa: E731
        lines.append(f"{row['label'][:21]:22}{level_name(row):>8}{row['requests'] - row['failed']:>6}"
                     f"{row['request_throughput']:7.2f}{row['output_throughput']:10.1f}{s('p50_ttft'):>9}"
                     f"{s('p90_ttft'):>7}{s('p99_ttft'):>7}{ms('p50_tpot'):>9}{ms('p50_itl'):>8}{ms('p99_itl'):>7}"
                     f"{s('p50_e2e'):>8}{s('p99_e2e'):>7}{row['goodput']:8.2f}")
    lines.append("TTFT and E2E in seconds, TPOT and ITL in milliseconds; goodput: requests/s within the SLOs")
    return "\n".join(lines)
