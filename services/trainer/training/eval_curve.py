"""Validation F1 while a model trains: a TrainerCallback that evaluates it on the first questions of the validation
split before its first step and at evenly spaced steps after, for the report's F1-against-steps curves. The points
are for reading only: no choice is made on them (recipes are chosen on the tuning split). The evaluation at the
end of every run (publishing.evaluate_staged) is the curve's last point."""
import torch
from transformers import TrainerCallback

from services.trainer.training.data import QAExample
from services.trainer.training.evaluation import evaluate_model


class EvalCurve(TrainerCallback):
    def __init__(self, tokenizer, examples: list[QAExample], max_new_tokens: int, points: int,
                 autocast_dtype: torch.dtype) -> None:
        self.tokenizer = tokenizer
        self.examples = examples
        self.max_new_tokens = max_new_tokens
        self.points = points  # evaluations before the end, the first before training
        self.autocast_dtype = autocast_dtype
        self.curve: list[dict] = []
        self._steps: set[int] = set()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._steps = {state.max_steps * i // self.points for i in range(1, self.points)}
        self._evaluate(model, args, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self._steps:
            self._evaluate(model, args, state.global_step)

    def add_final(self, args, step: int, result: dict) -> None:
        self.curve.append(self._point(args, step, result))

    def _evaluate(self, model, args, step: int) -> None:
        result = evaluate_model(model, self.tokenizer, self.examples, self.max_new_tokens, samples_kept=0,
                                autocast_dtype=self.autocast_dtype)
        model.train()
        self.curve.append(self._point(args, step, result.summary()))

    @staticmethod
    def _point(args, step: int, result: dict) -> dict:
        # Rows a step learns from: SFT examples, or GRPO's sampled answers (its group size per prompt).
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        return {"step": step, "rows_seen": step * per_step, "f1": result["f1"],
                "exact_match": result["exact_match"], "both": result["both"], "examples": result["examples"]}
