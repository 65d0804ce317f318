"""The whole post-training story in one command: SFT, RL, then base, SFT and RL compared on the whole validation
split (raw greedy output, no service-side completion of the format).

    python -m devtools.post_training post-train          (make post-train: the embedded model, offline)

LLM_BASE_MODEL and SQUAD_DATASET are decided as everywhere (unset and offline: the embedded SmolLM2-135M-Instruct
and the shipped SQuAD v1.1 train slice). Pointed at the stand-in's folder (models/tiny-gpt2), it pretrains the
stand-in first when it is missing. SFT and RL take the recipe of the base model: a folder's post_training.json
(the embedded model and the stand-in each carry their own, chosen on held-out training data), else the documented
defaults the REST endpoints use. Prints the table and writes MODELS_DIR/reports/post-train.json (results, curves,
recipe, times) and post-train.png: base/sft/rl bars for prefix, suffix, both, EM and F1; SFT's loss and validation F1
against the examples seen; RL's reward parts, validation F1 and share of zero-variance groups against its steps.
The F1 curves are on the first TRAINER_EVAL_EXAMPLES validation questions, the bars on all of them.
"""
import dataclasses
import json
import pathlib
import time

from services.common import adapters
from services.common.base_model import BaseModelSpec, BaseModelUnavailable, load_tokenizer
from services.common.devices import Placement
from services.common.embedded_model import RECIPE_FILE
from services.common.limits import out_of_range
from services.trainer.config import TrainerConfig
from services.trainer.training import reports
from services.trainer.decisions import training_context
from services.trainer.training.params import RlParams, SftParams
from textgen.paths import STAND_IN_FOLDER


@dataclasses.dataclass(frozen=True)
class Recipe:
    sft: SftParams
    rl: RlParams
    source: str  # where it came from


def recipe_for(base: BaseModelSpec) -> Recipe:
    """The base model folder's post_training.json, or the documented defaults."""
    path = pathlib.Path(base.source) / RECIPE_FILE if isinstance(base.source, pathlib.Path) else None
    if path is None or not path.is_file():
        return Recipe(SftParams(), RlParams(), "the documented defaults")
    written = json.loads(path.read_text())
    recipe = Recipe(SftParams(**written.get("sft", {})), RlParams(**written.get("rl", {})), str(path))
    problems = out_of_range(recipe.sft) + out_of_range(recipe.rl)
    if problems:
        raise SystemExit(f"{path}: " + "; ".join(description for _, description in problems))
    return recipe


def missing_stand_in(setting: str) -> pathlib.Path | None:
    """The stand-in's folder when LLM_BASE_MODEL names it and it has not been pretrained yet; None for anything
    else (a model folder, the embedded model, a Hub id such as openai-community/gpt2)."""
    folder = pathlib.Path(setting)
    return folder if folder.name == STAND_IN_FOLDER and not (folder / "config.json").exists() else None


def _curve(name: str, models_dir: pathlib.Path, metric: str) -> list[dict]:
    folder = adapters.current_path(models_dir, name)
    path = folder / f"{metric}_curve.json" if folder else None
    return json.loads(path.read_text()) if path and path.is_file() else []


# Evaluations while training, the first before it (eval_curve.EvalCurve), for the F1 curves; the end of each run
# adds its own.
EVAL_POINTS = {"sft": 4, "rl": 2}


def plot(results: dict[str, dict], curves: dict[str, list[dict]], path: pathlib.Path) -> None:
    plt = reports._pyplot()
    figure = plt.figure(figsize=(15, 8))
    grid = figure.add_gridspec(2, 3)
    bars = figure.add_subplot(grid[0, :2])
    columns = [("starts_with_prefix", "prefix %"), ("ends_with_suffix", "suffix %"), ("both", "both %"),
               ("exact_match", "EM"), ("f1", "F1")]
    width = 0.8 / len(results)
    for index, (name, result) in enumerate(results.items()):
        bars.bar([c + index * width for c in range(len(columns))], [result[k] for k, _ in columns], width, label=name)
    bars.set_xticks([c + width * (len(results) - 1) / 2 for c in range(len(columns))], [t for _, t in columns])
    bars.set_ylim(0, 100)
    bars.legend()
    bars.set_title("validation split, raw greedy output")
    _plot_sft(figure.add_subplot(grid[0, 2]), curves["sft_loss"], curves["sft_f1"])
    _plot_rl(figure.add_subplot(grid[1, 0]), figure.add_subplot(grid[1, 1]), figure.add_subplot(grid[1, 2]),
             curves["rl_reward"], curves["rl_f1"])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_sft(axes, loss: list[dict], f1: list[dict]) -> None:
    batch = f1[-1]["rows_seen"] / f1[-1]["step"] if f1 and f1[-1]["step"] else 1
    axes.plot([p["step"] * batch for p in loss], [p["loss"] for p in loss], color="tab:blue", alpha=0.6)
    axes.set_xlabel("SFT examples seen")
    axes.set_ylabel("loss", color="tab:blue")
    twin = axes.twinx()
    twin.plot([p["rows_seen"] for p in f1], [p["f1"] for p in f1], "o-", color="tab:red")
    twin.set_ylabel("validation F1", color="tab:red")
    axes.set_title("SFT: loss and validation F1")
    axes.grid(alpha=0.3)


def _plot_rl(parts, answers, flat, reward: list[dict], f1: list[dict]) -> None:
    steps = [p["step"] for p in reward]
    for key in sorted({k for p in reward for k in p if k.startswith("rewards/")}):
        parts.plot(steps, [p.get(key) for p in reward], label=key.split("/")[1].removeprefix("reward_"))
    parts.plot(steps, [p["reward"] for p in reward], color="black", label="weighted sum")
    parts.set_title("RL: mean reward parts per step")
    parts.legend(fontsize=7)
    answers.plot([p["step"] for p in f1], [p["f1"] for p in f1], "o-", color="tab:red")
    answers.set_title("RL: validation F1")
    flat.plot(steps, [100 * p.get("frac_reward_zero_std", 0) for p in reward], color="tab:gray")
    flat.set_ylim(0, 100)
    flat.set_title("RL: groups whose answers all scored alike, %")
    for axes in (parts, answers, flat):
        axes.set_xlabel("RL step")
        axes.grid(alpha=0.3)


def post_train(config: TrainerConfig, placement: Placement, pretrain_steps: int | None = None) -> dict:
    """`config` decided, `placement` from its prepare_torch."""
    from services.trainer.training import pipeline
    from services.trainer.training.evaluation import compare_published
    from services.trainer.training.rl import RlStep
    from services.trainer.training.sft import SftStep
    from devtools.post_training.stand_in import PretrainSettings, pretrain

    times = {}
    missing = missing_stand_in(config.base_model)
    if missing is not None:
        started = time.monotonic()
        settings = PretrainSettings() if pretrain_steps is None else PretrainSettings(steps=pretrain_steps)
        pretrain(missing, settings, torch_threads=config.torch_threads)
        times["pretrain"] = time.monotonic() - started
    try:
        started = time.monotonic()
        # Only after pretraining: a relative LLM_BASE_MODEL is read as a path once its first folder exists.
        context = training_context(config, placement)
        base = context.base
        load_tokenizer(base, show_progress=True)  # makes the embedded model first, when it is the base and missing
        times["base model"] = time.monotonic() - started
    except BaseModelUnavailable as error:  # e.g. a folder that is not there, and not the stand-in's
        raise SystemExit(f"LLM_BASE_MODEL: {error}") from None
    recipe = recipe_for(base)
    print(f"base model: {base.name}\nrecipe: {recipe.source}\n  sft: {recipe.sft}\n  rl: {recipe.rl}", flush=True)
    for step in (SftStep(recipe.sft), RlStep(recipe.rl)):
        started = time.monotonic()
        version = pipeline.train(step, context, show_progress=True, eval_points=EVAL_POINTS[step.kind])
        times[step.name] = time.monotonic() - started
        print(f"{step.name}: published version {version} in {times[step.name]:.0f} s", flush=True)
    started = time.monotonic()
    comparison = compare_published(context, None, context.eval_max_new_tokens)
    times["eval"] = time.monotonic() - started
    times.update({f"eval {name}": seconds for name, seconds in comparison.seconds.items()})
    curves = {f"{name}_{metric}": _curve(name, context.models_dir, metric)
              for name, metric in (("sft", "loss"), ("sft", "f1"), ("rl", "reward"), ("rl", "f1"))}
    flat = [p["frac_reward_zero_std"] for p in curves["rl_reward"] if "frac_reward_zero_std" in p]
    report = {"base_model": base.name, "dataset": context.squad_dataset, "results": comparison.results,
              "adapters": comparison.sources, "changes": comparison.changes,
              "recipe": {"source": recipe.source, "sft": dataclasses.asdict(recipe.sft),
                         "rl": dataclasses.asdict(recipe.rl)},
              "seconds": times, "curves": curves,
              "rl_zero_variance_groups": sum(flat) / len(flat) if flat else None}
    folder = pathlib.Path(context.models_dir) / "reports"
    reports.write_json(folder / "post-train.json", report)
    plot(comparison.results, curves, folder / "post-train.png")
    print(comparison.table)
    for name in ("sft", "rl"):
        print(f"{name} validation F1 while training (first {context.eval_examples} questions): " + ", ".join(
            f"step {p['step']} {p['f1']:.1f}" for p in curves[f"{name}_f1"]))
    if flat:
        print(f"RL groups whose answers all scored alike: {100 * sum(flat) / len(flat):.0f}% of {len(flat)} steps")
    print("seconds: " + ", ".join(f"{stage} {seconds:.0f}" for stage, seconds in times.items()))
    print(f"wrote {folder / 'post-train.json'} and post-train.png")
    return report
