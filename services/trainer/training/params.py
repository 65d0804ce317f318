"""The parameters of the training runs: defaults and allowed ranges, defined once here (trainer.proto's comments
state the same, tests/test_trainer_params.py checks that), declared as every service declares its request limits
(services.common.limits), so the gRPC server, the command line (transformers' HfArgumentParser, which sees plain
types) and --help all read them from one place. Free of heavy imports: the gRPC server validates requests without
loading torch."""
import dataclasses
import types
import typing

from services.common import adapters
from services.common.limits import Bound, bounds


def with_ranges_in_help(cls):
    """Appends each field's allowed range to its --help text, so the text never states a range of its own."""
    for field in dataclasses.fields(cls):
        bound = bounds(cls).get(field.name)
        if bound is not None:
            field.metadata = types.MappingProxyType({**field.metadata,
                                                     "help": f"{field.metadata.get('help', '')}: {bound}"})
    return cls


def _help(text: str) -> dict:
    return {"help": text}


@with_ranges_in_help
@dataclasses.dataclass(frozen=True)
class SftParams:
    max_examples: typing.Annotated[int, Bound(1, 100_000)] = dataclasses.field(
        default=200, metadata=_help("SQuAD training questions, drawn at random across the train split (the start of "
                                    "a seed-0 shuffle)"))
    num_train_epochs: typing.Annotated[int, Bound(1, 20)] = dataclasses.field(
        default=1, metadata=_help("passes over them"))
    max_length: typing.Annotated[int, Bound(32, 1024)] = dataclasses.field(
        default=256, metadata=_help("tokens per example (prompt + answer); longer contexts are cut around the answer"))
    learning_rate: typing.Annotated[float, Bound(0, 0.01, low_open=True)] = dataclasses.field(
        default=2e-4, metadata=_help("AdamW learning rate"))
    lora_r: typing.Annotated[int, Bound(1, 256)] = dataclasses.field(default=16, metadata=_help("LoRA rank"))
    adapter: str = dataclasses.field(default="sft", metadata=_help(
        f"the adapter it publishes a version of ({adapters.NEW_NAME_RULE})"))


# RlParams' weights, each of a named grader of the preset (training/squad_grader.py).
REWARD_WEIGHT_FIELDS = ("prefix_weight", "suffix_weight", "clean_end_weight", "answer_weight")


@with_ranges_in_help
@dataclasses.dataclass(frozen=True)
class RlParams:
    steps: typing.Annotated[int, Bound(1, 10_000)] = dataclasses.field(default=60, metadata=_help("GRPO steps"))
    max_new_tokens: typing.Annotated[int, Bound(8, 256)] = dataclasses.field(
        default=60, metadata=_help("tokens per sampled answer"))
    use_dataset_prompts: bool = dataclasses.field(
        default=False, metadata=_help("prompt with SQuAD training questions instead of the built-in fixed set"))
    max_prompt_examples: typing.Annotated[int, Bound(1, 100_000)] = dataclasses.field(
        default=60, metadata=_help("SQuAD training questions used with --use-dataset-prompts, drawn at random from "
                                   "the end of SFT's shuffle (questions SFT did not train on, while both fit in the "
                                   "split)"))
    learning_rate: typing.Annotated[float, Bound(0, 0.01, low_open=True)] = dataclasses.field(
        default=1e-5, metadata=_help("AdamW learning rate"))
    # Sampled answers far from the greedy ones teach nothing about the answers served (greedy): at 0.7 a small
    # model's samples almost never had the exact format while its greedy answers mostly did.
    temperature: typing.Annotated[float, Bound(0, 2, low_open=True)] = dataclasses.field(
        default=0.3, metadata=_help("sampling temperature of the answers GRPO compares"))
    num_generations: typing.Annotated[int, Bound(2, 32)] = dataclasses.field(
        default=8, metadata=_help("answers sampled per prompt (GRPO's group)"))
    # One question per step leaves a step to the few groups whose answers differ; several average their gradients.
    prompts_per_step: typing.Annotated[int, Bound(1, 64)] = dataclasses.field(
        default=1, metadata=_help("questions whose groups make one optimizer step (their gradients averaged)"))
    # How much each reward part (a named grader of training/squad_grader.py) counts. After SFT the format is nearly
    # always right, so in most groups only the answer's F1 differs; the answer weighs as much as the three format
    # parts together. All format weights with answer_weight 0 is the seed's format-only RL.
    prefix_weight: typing.Annotated[float, Bound(0, 10)] = dataclasses.field(
        default=1.0, metadata=_help("weight of the exact prefix reward"))
    suffix_weight: typing.Annotated[float, Bound(0, 10)] = dataclasses.field(
        default=1.0, metadata=_help("weight of the exact closing sentence reward"))
    clean_end_weight: typing.Annotated[float, Bound(0, 10)] = dataclasses.field(
        default=1.0, metadata=_help("weight of the reward for nothing after the closing sentence"))
    answer_weight: typing.Annotated[float, Bound(0, 10)] = dataclasses.field(
        default=3.0, metadata=_help("weight of the answer's SQuAD F1 against the gold answers (0: format only)"))
    adapter: str = dataclasses.field(default="rl", metadata=_help(
        f"the adapter it publishes a version of ({adapters.NEW_NAME_RULE})"))
    from_adapter: str = dataclasses.field(default="sft", metadata=_help(
        "the adapter whose current version it starts from"))
    skip_uniform_groups: bool = dataclasses.field(default=False, metadata=_help(
        "sample another question in place of one whose answers all scored alike (up to 8 a step; they teach "
        "nothing), counting those skipped in the job's metrics"))


@with_ranges_in_help
@dataclasses.dataclass(frozen=True)
class EvalParams:
    """Unset, each takes its TRAINER_EVAL_* setting, as the evaluation at the end of every job does."""
    examples: typing.Annotated[int | None, Bound(1, 100_000)] = dataclasses.field(
        default=None, metadata=_help("validation questions (default TRAINER_EVAL_EXAMPLES)"))
    max_new_tokens: typing.Annotated[int | None, Bound(8, 256)] = dataclasses.field(
        default=None, metadata=_help("tokens generated per answer (default TRAINER_EVAL_MAX_NEW_TOKENS)"))


def refused(params) -> list[tuple[str, str]]:
    """(field, explanation) for each value in range that a job still may not use: an adapter name it may not take,
    reward weights that are all 0 (nothing to learn from)."""
    problems = []
    if isinstance(params, RlParams) and not any(getattr(params, field) for field in REWARD_WEIGHT_FIELDS):
        problems.append(("answer_weight", f"at least one of {', '.join(REWARD_WEIGHT_FIELDS)} must be above 0 "
                                          "(all 0: every answer gets the same reward and RL learns nothing)"))
    adapter = getattr(params, "adapter", None)
    if adapter is not None and not adapters.is_new_name(adapter):
        problems.append(("adapter", f"adapter must be {adapters.NEW_NAME_RULE} (got {adapter!r})"))
    source = getattr(params, "from_adapter", None)
    if source is not None and not adapters.is_valid_name(source):
        problems.append(("from_adapter", f"from_adapter must be a published adapter's name (got {source!r})"))
    return problems
