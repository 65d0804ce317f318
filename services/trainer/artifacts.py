"""What a training run writes beside its adapter: parameters, the curve as JSON and as a PNG plot, evaluation."""
import json
import pathlib


def write_json(path: pathlib.Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def plot_curve(curve: list[dict], metric: str, title: str, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display in containers or CI
    import matplotlib.pyplot as plt

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
