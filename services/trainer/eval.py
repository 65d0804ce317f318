"""python -m services.trainer.eval [--examples 50] — base, sft and rl side by side on the validation split:
SQuAD EM/F1 of the answer (prefix and suffix stripped) and the raw format compliance of the model's own output.
Prints the table and writes MODELS_DIR/reports/eval.md, eval.json and eval.png."""
import argparse
import pathlib

from services.common import adapters
from services.common.logs import setup_logging
from services.trainer.artifacts import write_json
from services.trainer.config import TrainerConfig

COLUMNS = [("exact_match", "EM"), ("f1", "F1"), ("starts_with_prefix", "starts with prefix %"),
           ("ends_with_suffix", "ends with suffix %"), ("both", "both %")]


def table(results: dict[str, dict], sources: dict[str, str]) -> str:
    header = "| model | " + " | ".join(title for _, title in COLUMNS) + " | examples | adapter |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for name, result in results.items():
        cells = " | ".join(f"{result[key]:.1f}" for key, _ in COLUMNS)
        lines.append(f"| {name} | {cells} | {result['examples']} | {sources[name]} |")
    return "\n".join(lines)


def plot(results: dict[str, dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(results)
    for index, (name, result) in enumerate(results.items()):
        axes.bar([c + index * width for c in range(len(COLUMNS))], [result[k] for k, _ in COLUMNS], width,
                 label=name)
    axes.set_xticks([c + width * (len(results) - 1) / 2 for c in range(len(COLUMNS))],
                    [title for _, title in COLUMNS], fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("%")
    axes.legend()
    axes.set_title("base vs sft vs rl on the validation split")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.trainer.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=None, help="validation questions (TRAINER_EVAL_EXAMPLES)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="(TRAINER_EVAL_MAX_NEW_TOKENS)")
    args = parser.parse_args()
    config = TrainerConfig.from_env()
    setup_logging(config.log_level)
    examples_wanted = args.examples or config.eval_examples
    max_new_tokens = args.max_new_tokens or config.eval_max_new_tokens
    if examples_wanted < 1 or not 8 <= max_new_tokens <= 256:
        parser.error("--examples must be at least 1 and --max-new-tokens between 8 and 256")

    from services.trainer.data import load_squad
    from services.trainer.evaluate import evaluate_model
    from services.trainer.model_io import load_tokenizer, load_with_adapter

    tokenizer = load_tokenizer(config.base_model)
    examples = load_squad(config.squad_dataset, "validation", limit=examples_wanted)
    results, sources = {}, {}
    for name in ("base", *adapters.ADAPTER_NAMES):
        path = None if name == "base" else adapters.current_path(config.models_dir, name)
        if name != "base" and path is None:
            print(f"{name}: no published adapter, skipped")
            continue
        model = load_with_adapter(config.base_model, path)
        results[name] = evaluate_model(model, tokenizer, examples, max_new_tokens).summary()
        sources[name] = "-" if path is None else f"{name}/{path.name}"
    report = table(results, sources)
    print(report)
    reports = pathlib.Path(config.models_dir) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    heading = (f"# Evaluation: {config.base_model} on {config.squad_dataset} (validation, "
               f"{examples_wanted} questions, {max_new_tokens} new tokens, greedy)\n\n")
    (reports / "eval.md").write_text(heading + report + "\n")
    write_json(reports / "eval.json", {"base_model": config.base_model, "dataset": config.squad_dataset,
                                       "results": results, "adapters": sources})
    plot(results, reports / "eval.png")
    print(f"wrote {reports / 'eval.md'}, eval.json, eval.png")


if __name__ == "__main__":
    main()
