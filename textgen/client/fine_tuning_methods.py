"""`textgen fine-tune create`'s method choice: --method supervised|dpo|reinforcement and each method's flags, put in
method.<method>.hyperparameters (a flag of another method is a usage error naming the method that takes it); and a
job's metrics events as --watch and `events` print them."""
import json
import pathlib

METHODS = ("supervised", "dpo", "reinforcement")
# Each hyperparameter's flag: its type and the methods that take it (OpenAI's names, as the protos have them).
HYPERPARAMETERS = {
    "n_epochs": (int, METHODS, "passes over the training file (unset: auto)"),
    "batch_size": (int, METHODS, "examples, pairs or prompts per optimizer step (unset: auto)"),
    "learning_rate_multiplier": (float, METHODS, "times the method's base learning rate (unset: auto, 1)"),
    "beta": (float, ("dpo",), "dpo: how far the model may move from its starting point (unset: auto, 0.1)"),
    "compute_multiplier": (float, ("reinforcement",),
                           "reinforcement: answers sampled per prompt are round(8 x this) (unset: auto, 1)"),
    "temperature": (float, ("reinforcement",), "reinforcement: sampling temperature (unset: auto, 1)"),
    "max_completion_tokens": (int, ("reinforcement",), "reinforcement: tokens per sampled answer (unset: auto, 64)"),
    "skip_uniform_groups": (bool, ("reinforcement",),
                            "reinforcement: sample another prompt in place of one whose answers all score alike"),
    "eval_interval": (int, ("reinforcement",), "reinforcement with --validation-file: steps between its evaluations "
                      "(unset: auto, one epoch)"),
    "eval_samples": (int, ("reinforcement",), "reinforcement with --validation-file: answers sampled per its prompts "
                     "(unset: auto, the group's size)"),
}
# A metrics event's figures in this order, then any other in name order: the headline first, a reinforcement job's
# reward (its GRPO loss after it), else train_loss.
METRICS_ORDER = ("reward", "train_loss", "train_reward_margin", "train_reward_accuracy", "train_mean_token_accuracy",
                 "frac_reward_zero_std", "grader_", "skipped_prompts", "trained_flat", "valid_")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(command) -> None:
    command.add_argument("--method", choices=METHODS, default="supervised", help="the training method (default "
                         "supervised); the training file must be in its format")
    for name, (kind, methods, help_text) in HYPERPARAMETERS.items():
        if kind is bool:
            command.add_argument(_flag(name), action="store_true", default=None, help=help_text)
        else:
            command.add_argument(_flag(name), type=kind, help=help_text)
    command.add_argument("--grader", help="reinforcement (required): OpenAI's grader object as JSON, inline or "
                         "@path to a JSON file, e.g. '{\"type\": \"string_check\", \"name\": \"exact\", \"input\": "
                         "\"{{sample.output_text}}\", \"reference\": \"{{item.answer}}\", \"operation\": \"eq\"}'")


def _grader(text: str, error) -> dict:
    """--grader's JSON object, inline or read from @path; `error` (the parser's) on anything else."""
    if text.startswith("@"):
        path = pathlib.Path(text[1:])
        if not path.is_file():
            error(f"--grader {text}: no such file")
        text = path.read_text(encoding="utf-8")
    try:
        grader = json.loads(text)
    except json.JSONDecodeError as problem:
        error(f"--grader is not JSON: {problem}")
    if not isinstance(grader, dict):
        error(f"--grader takes a JSON object (got {type(grader).__name__})")
    return grader


def create_request(args, error) -> dict:
    """The method, its hyperparameters and grader that `args` give, as create_fine_tuning_job takes them; `error`
    (the parser's) names a flag given for another method, or reinforcement's missing grader."""
    for name, (_, methods, _) in HYPERPARAMETERS.items():
        if getattr(args, name) is not None and args.method not in methods:
            error(f"{_flag(name)} is a {' or '.join(methods)} job's flag (--method {methods[0]}); "
                  f"this job's method is {args.method}")
    if args.method != "reinforcement" and args.grader is not None:
        error(f"--grader is a reinforcement job's flag (--method reinforcement); this job's method is {args.method}")
    if args.method == "reinforcement" and args.grader is None:
        error("--method reinforcement takes --grader: OpenAI's grader object as JSON, inline or @path")
    hyperparameters = {name: getattr(args, name) for name, (_, methods, _) in HYPERPARAMETERS.items()
                       if args.method in methods}
    grader = _grader(args.grader, error) if args.method == "reinforcement" else None
    return {"method": args.method, "grader": grader, **hyperparameters}


def _rank(name: str) -> tuple[int, str]:
    return next((i for i, known in enumerate(METRICS_ORDER) if name == known or
                 (known.endswith("_") and name.startswith(known))), len(METRICS_ORDER)), name


def metrics_line(data: dict) -> str:
    """A metrics event's figures: `Step 3/12: train_loss 0.6931, train_reward_margin 0.0123, ...`, the method's
    headline figure (train_loss, or a reinforcement job's reward) first, counts as whole numbers."""
    figures = sorted((name for name in data if name not in ("step", "total_steps")), key=_rank)
    shown = ", ".join(f"{name} {data[name]:.4g}" for name in figures if isinstance(data[name], (int, float)))
    return f"Step {int(data.get('step', 0))}/{int(data.get('total_steps', 0))}: {shown}"
