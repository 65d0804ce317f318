"""How RL's parameters reach trl's GRPOConfig: several prompts per optimizer step still sample one prompt's group
per batch (GPT-2's left-padded batches of different prompts get wrong position ids in GRPO, trl issue 6800)."""
import torch

from services.common.devices import Placement
from services.trainer.training.params import RlParams
from services.trainer.training.grpo import grpo_config
from services.trainer.training.rl import RlStep

CPU = Placement(torch.device("cpu"), torch.float32)


def test_prompts_per_step_accumulates_groups_each_sampled_alone(tmp_path):
    config = grpo_config(str(tmp_path), RlStep(RlParams(prompts_per_step=3, num_generations=6, steps=5)).settings(), CPU,
                         False)
    assert (config.gradient_accumulation_steps, config.max_steps) == (3, 5)
    # One group per generation batch, sampled from the weights of the step it trains (no stale samples).
    assert (config.generation_batch_size, config.steps_per_generation) == (6, 1)
    assert config.per_device_train_batch_size == 6


def test_one_prompt_per_step_by_default(tmp_path):
    config = grpo_config(str(tmp_path), RlStep(RlParams()).settings(), CPU, False)
    assert (config.gradient_accumulation_steps, config.generation_batch_size) == (1, RlParams().num_generations)


def test_each_weight_reaches_trl_beside_its_grader_by_name(tmp_path):
    step = RlStep(RlParams(prefix_weight=0.5, suffix_weight=1.5, clean_end_weight=2.0, answer_weight=4.0))
    functions, _ = step.rewards()
    config = grpo_config(str(tmp_path), step.settings(), CPU, False)
    assert dict(zip([function.__name__ for function in functions], config.reward_weights, strict=True)) == {
        "prefix": 0.5, "suffix": 1.5, "clean_end": 2.0, "answer": 4.0}
