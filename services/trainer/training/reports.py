"""What training and evaluation write: JSON files, the loss or reward curve as JSON and PNG beside an adapter, and
the base/sft/rl comparison as a Markdown table and a bar chart."""
import csv
import json
import pathlib

COMPARISON_COLUMNS = [("exact_match", "EM"), ("f1", "F1"), ("starts_with_prefix", "starts with prefix %"),
                      ("ends_with_suffix", "ends with suffix %"), ("both", "both %")]


def write_json(path: pathlib.Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display in containers or CI
    import matplotlib.pyplot as plt

    return plt


def plot_curve(curve: list[dict], metric: str, title: str, path: pathlib.Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot([p["step"] for p in curve], [p[metric] for p in curve], marker="." if len(curve) < 50 else None)
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_curve(directory: pathlib.Path, curve: list[dict], metric: str, title: str) -> None:
    write_json(directory / f"{metric}_curve.json", curve)
    plot_curve(curve, metric, title, directory / f"{metric}_curve.png")


def comparison_table(results: dict[str, dict], sources: dict[str, str]) -> str:
    header = "| model | " + " | ".join(title for _, title in COMPARISON_COLUMNS) + " | examples | adapter |"
    lines = [header, "|" + "---|" * (len(COMPARISON_COLUMNS) + 3)]
    for name, result in results.items():
        cells = " | ".join(f"{result[key]:.1f}" for key, _ in COMPARISON_COLUMNS)
        lines.append(f"| {name} | {cells} | {result['examples']} | {sources[name]} |")
    return "\n".join(lines)


def plot_comparison(results: dict[str, dict], path: pathlib.Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(results)
    for index, (name, result) in enumerate(results.items()):
        axes.bar([c + index * width for c in range(len(COMPARISON_COLUMNS))],
                 [result[k] for k, _ in COMPARISON_COLUMNS], width, label=name)
    axes.set_xticks([c + width * (len(results) - 1) / 2 for c in range(len(COMPARISON_COLUMNS))],
                    [title for _, title in COMPARISON_COLUMNS], fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("%")
    axes.legend()
    axes.set_title("base vs sft vs rl on the validation split")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_metrics_csv(path: pathlib.Path, metrics: dict[int, dict[str, float]]) -> None:
    """One row a step with its logged figures (training/progress.py's names), as OpenAI's fine-tuning jobs write
    their results file: step first, then every figure any step has, blank where a step has none."""
    names = list(dict.fromkeys(name for figures in metrics.values() for name in figures))
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", *names])
        for step in sorted(metrics):
            writer.writerow([step, *(_figure(metrics[step].get(name)) for name in names)])


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
