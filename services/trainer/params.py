"""The parameters of the two job kinds with their documented defaults (trainer.proto), free of heavy imports so
the gRPC server can validate requests without loading torch."""
import dataclasses


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
