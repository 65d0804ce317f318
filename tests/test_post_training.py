"""Post-training measurably works, end to end on the stand-in (pretrained once per test session): SFT raises raw
format compliance (prefix and suffix, greedy, no service-side completion) over the base
model by at least 50 points, and RL does not lower it. `make post-train` runs the same at full size."""
import dataclasses
import json
import subprocess
import sys

import pytest

from devtools.post_training.post_train import missing_stand_in, post_train, recipe_for
from devtools.post_training.rl_tuning import SCORED_ARTICLES, write_split
from devtools.post_training.stand_in import RECIPE, PretrainSettings
from devtools.processes import base_env
from services.common.base_model import choose
from services.common.devices import resolve
from services.trainer.config import TrainerConfig
from services.trainer.training.data import TRAIN_SHUFFLE_SEED, load_squad
from services.trainer.training.evaluation import f1_change
from textgen.paths import ROOT, SQUAD_SAMPLE, SQUAD_TRAIN_SLICE, STAND_IN_FOLDER

# The stand-in's own pretraining (about 5 minutes here: shorter ones left SFT under 50% compliance) and recipe,
# with RL cut to 60 steps.
CI_PRETRAIN_STEPS = PretrainSettings().steps
CI_RECIPE = {"sft": RECIPE["sft"], "rl": {**RECIPE["rl"], "steps": 60}}


def training(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devtools.post_training", *args], cwd=ROOT, env=base_env(env),
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="session")
def stand_in(tmp_path_factory):
    models = tmp_path_factory.mktemp("post-training")
    done = training({"MODELS_DIR": str(models)}, "pretrain", "--steps", str(CI_PRETRAIN_STEPS))
    assert done.returncode == 0, done.stderr[-3000:]
    return models


def test_the_stand_in_is_an_ordinary_model_folder_that_says_what_it_is(stand_in):
    folder = stand_in / STAND_IN_FOLDER
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "post_training.json"} <= {
        p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "not GPT-2" in card and f"{CI_PRETRAIN_STEPS} steps" in card
    assert not list(stand_in.glob(f".{STAND_IN_FOLDER}-staging-*"))  # written atomically


def test_sft_teaches_the_format_and_rl_keeps_it(stand_in):
    (stand_in / STAND_IN_FOLDER / "post_training.json").write_text(json.dumps(CI_RECIPE))
    env = {"MODELS_DIR": str(stand_in), "LLM_BASE_MODEL": str(stand_in / STAND_IN_FOLDER),
           "SQUAD_DATASET": str(SQUAD_SAMPLE), "TRAINER_EVAL_EXAMPLES": "8",
           "TRAINER_EVAL_MAX_NEW_TOKENS": "64", "LLM_ADDR": "127.0.0.1:1"}
    done = training(env, "post-train")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((stand_in / "reports" / "post-train.json").read_text())
    base, sft, rl = (report["results"][name] for name in ("base", "sft", "rl"))
    assert base["examples"] == sft["examples"] == 124  # the whole validation split
    assert sft["both"] - base["both"] >= 50, report["results"]
    assert rl["both"] >= sft["both"], report["results"]
    assert report["recipe"]["rl"]["steps"] == 60 and report["curves"]["rl_reward"] and report["curves"]["sft_loss"]
    # Validation F1 before training, at evenly spaced steps, and at the end (the adapter's own evaluation).
    sft_f1, rl_f1 = report["curves"]["sft_f1"], report["curves"]["rl_f1"]
    assert [p["step"] for p in rl_f1] == [0, 30, 60] and sft_f1[0]["step"] == 0 and len(sft_f1) == 5
    assert sft_f1[-1]["f1"] == sft["f1"] or sft_f1[-1]["examples"] == 8
    assert sft_f1[-1]["rows_seen"] > sft_f1[1]["rows_seen"] > 0
    # RL's curve keeps each reward part and the share of groups that taught nothing.
    assert {"frac_reward_zero_std", "rewards/answer/mean", "rewards/prefix/mean"} <= set(
        report["curves"]["rl_reward"][-1])
    assert 0 <= report["rl_zero_variance_groups"] <= 1
    # Each model's F1 change from the one it was trained from, paired on the same questions.
    for before, after in (("base", "sft"), ("sft", "rl")):
        change = report["changes"][after]
        assert change["f1_change"] == pytest.approx(report["results"][after]["f1"] - report["results"][before]["f1"])
        assert change["questions"] == 124 and change["better"] + change["worse"] <= 124
    assert "rl - sft:" in done.stdout and "paired on 124 questions" in done.stdout
    assert {"eval base", "eval sft", "eval rl"} <= set(report["seconds"]) and "sft: evaluated on 124" in done.stdout
    assert (stand_in / "reports" / "post-train.png").stat().st_size > 10_000


def test_only_a_missing_stand_in_is_pretrained_and_a_hub_id_keeps_the_documented_recipe(tmp_path):
    stand_in = tmp_path / STAND_IN_FOLDER
    assert missing_stand_in(str(stand_in)) == stand_in
    stand_in.mkdir()
    (stand_in / "config.json").write_text("{}")
    assert missing_stand_in(str(stand_in)) is None
    assert missing_stand_in("openai-community/gpt2") is None
    assert recipe_for(choose("openai-community/gpt2", tmp_path)).source == "the documented defaults"
    config = dataclasses.replace(TrainerConfig.from_env(), base_model=str(tmp_path / "no-model"),
                                 models_dir=tmp_path)
    with pytest.raises(SystemExit, match="LLM_BASE_MODEL: base model .*no-model.* is neither a folder nor a .gguf"):
        post_train(config, resolve("cpu", "float32", "TRAINER"))


def test_the_rl_tuning_split_scores_on_questions_sft_left_out_and_never_reads_validation(tmp_path):
    sft = {e.id for e in load_squad(str(SQUAD_TRAIN_SLICE), "train", limit=1200, sample_seed=TRAIN_SHUFFLE_SEED)}
    validation = {e.id for e in load_squad(str(SQUAD_TRAIN_SLICE), "validation")}
    for seen_prompts in (False, True):
        out = tmp_path / str(seen_prompts)
        sizes = write_split(str(SQUAD_TRAIN_SLICE), 1200, out, seen_prompts)
        prompts, scored = (load_squad(str(out), split) for split in ("train", "validation"))
        assert (len(prompts), len(scored)) == (sizes["train"], sizes["validation"]) and min(sizes.values()) > 100
        assert {e.title for e in scored} == set(SCORED_ARTICLES)
        assert not {e.title for e in prompts} & set(SCORED_ARTICLES)
        assert not {e.id for e in scored} & sft and not {e.id for e in prompts + scored} & validation
        assert all((e.id in sft) == seen_prompts for e in prompts)


def test_a_paired_change_counts_each_question_once_and_needs_the_same_questions():
    change = f1_change([1.0, 0.5, 0.0, 1.0], [1.0, 1.0, 0.0, 0.5])
    # Differences 0, +0.5, 0, -0.5: their standard deviation is (0.5 / 3) ** 0.5, over 4 ** 0.5 questions.
    assert change == {"questions": 4, "f1_change": 0.0, "standard_error": pytest.approx(100 * (0.5 / 3) ** 0.5 / 2),
                      "better": 1, "worse": 1}
    with pytest.raises(ValueError, match="the same questions"):
        f1_change([1.0, 0.5], [1.0])
