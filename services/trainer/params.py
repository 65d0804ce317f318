"""The parameters of the two job kinds, their documented defaults and allowed ranges (trainer.proto), free of
heavy imports so the gRPC server validates requests without loading torch. The CLIs use the same ranges."""
import dataclasses

# field: (low, high, low_open). learning_rate must be > 0.
SFT_RANGES = {"max_examples": (1, 100000, False), "num_train_epochs": (1, 20, False), "max_length": (32, 1024, False),
              "learning_rate": (0, 0.01, True), "lora_r": (1, 256, False)}
RL_RANGES = {"steps": (1, 10000, False), "max_new_tokens": (8, 256, False), "max_prompt_examples": (1, 100000, False),
             "learning_rate": (0, 0.01, True)}


@dataclasses.dataclass(frozen=True)
class SftParams:
    max_examples: int = 200
    num_train_epochs: int = 1
    max_length: int = 256
    learning_rate: float = 2e-4
    lora_r: int = 16


@dataclasses.dataclass(frozen=True)
class RlParams:
    steps: int = 60
    max_new_tokens: int = 60
    use_dataset_prompts: bool = False
    max_prompt_examples: int = 60
    learning_rate: float = 1e-5


def out_of_range(values: dict, ranges: dict) -> list[tuple[str, str]]:
    """(field, description) for each value outside its range, worded as services.common.errors.Violations does."""
    problems = []
    for field, (low, high, low_open) in ranges.items():
        value = values[field]
        if not ((value > low if low_open else value >= low) and value <= high):
            bound = f"greater than {low} and at most {high}" if low_open else f"between {low} and {high}"
            problems.append((field, f"{field} must be {bound} (got {value})"))
    return problems
