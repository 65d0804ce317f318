"""SQuAD loading, context trimming, the SQuAD metrics and the RL preset's graders (no servers)."""
import json
import re

import pytest

from devtools.models import RANDOM_GPT2, random_models_dir
from devtools.squad import squad_record, write_squad_folder
from services.common.base_model import choose, load_tokenizer
from services.common.prompts import PREFIX, SUFFIX, qa_completion
from services.trainer.training.data import (TRAIN_SHUFFLE_SEED, DatasetError, QAExample, fit_prompt, load_squad,
                                           sft_rows)
from services.trainer.training.graders import read_grader
from services.trainer.training.params import RlParams
from services.trainer.training.squad_grader import squad_grader
from services.trainer.training.squad_metrics import best_over_gold, exact_match, f1, normalize_answer
from textgen.paths import SQUAD_SAMPLE, SQUAD_TRAIN_SLICE


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    models = random_models_dir(tmp_path_factory.mktemp("tok"))
    return load_tokenizer(choose(str(models / RANDOM_GPT2), models))


def test_folder_file_and_nested_json_load(tmp_path):
    folder = write_squad_folder(tmp_path / "folder")
    train, validation = load_squad(str(folder), "train"), load_squad(str(folder), "validation")
    assert (len(train), len(validation)) == (30, 6)
    assert train[0].answers == ("Paris",) and train[0].question == "What is the capital of France?"
    assert len(load_squad(str(folder), "train", limit=5)) == 5

    single = tmp_path / "all.jsonl"
    single.write_text((folder / "train.jsonl").read_text())
    assert (len(load_squad(str(single), "train")), len(load_squad(str(single), "validation"))) == (24, 6)

    record = squad_record(0, "Oslo", "Norway", padding=1)
    nested = {"data": [{"title": "Norway", "paragraphs": [{"context": record["context"], "qas": [
        {"id": "n1", "question": record["question"],
         "answers": [{"text": "Oslo", "answer_start": record["answers"]["answer_start"][0]}]}]}]}]}
    (tmp_path / "nested.json").write_text(json.dumps(nested))
    assert load_squad(str(tmp_path / "nested.json"), "train")[0].answers == ("Oslo",)


def test_rl_draws_questions_sft_did_not_train_on():
    """SFT's draw from the start of the shuffle, RL's from its end: apart while they fit in the split, each in file
    order and spread over its articles."""
    everything = load_squad(str(SQUAD_TRAIN_SLICE), "train")
    sft = load_squad(str(SQUAD_TRAIN_SLICE), "train", limit=1200, sample_seed=TRAIN_SHUFFLE_SEED)
    rl = load_squad(str(SQUAD_TRAIN_SLICE), "train", limit=400, sample_seed=TRAIN_SHUFFLE_SEED, from_end=True)
    assert (len(sft), len(rl)) == (1200, 400) and not {e.id for e in sft} & {e.id for e in rl}
    position = {e.id: index for index, e in enumerate(everything)}
    for drawn in (sft, rl):
        assert [position[e.id] for e in drawn] == sorted(position[e.id] for e in drawn)
        assert len({e.title for e in drawn}) == len({e.title for e in everything})
    rest = load_squad(str(SQUAD_TRAIN_SLICE), "train", limit=len(everything) - 1200, sample_seed=TRAIN_SHUFFLE_SEED,
                      from_end=True)
    assert {e.id for e in sft} | {e.id for e in rest} == {e.id for e in everything}


def test_unloadable_dataset_names_the_variable_and_the_shipped_sample(tmp_path):
    with pytest.raises(DatasetError) as missing:
        load_squad(str(tmp_path / "nowhere.jsonl"), "train")
    assert "SQUAD_DATASET" in str(missing.value)
    named = re.findall(r"(/\S+/data/squad_\w+)", str(missing.value))
    assert named == [str(SQUAD_TRAIN_SLICE), str(SQUAD_SAMPLE)]  # the folders it sends users to exist
    assert all(load_squad(folder, "validation") for folder in named)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(squad_record(0, "Rome", "Italy", 1)) + "\n{\"question\": \"no answers\"}\n")
    with pytest.raises(DatasetError, match="bad.jsonl line 2"):
        load_squad(str(bad), "train")
    with pytest.raises(DatasetError, match="holds no train.jsonl"):
        load_squad(str(tmp_path), "train")


def test_sft_rows_fit_max_length_and_keep_the_answer(tokenizer, tmp_path):
    examples = load_squad(str(write_squad_folder(tmp_path)), "train")
    for max_length in (64, 128):
        rows = sft_rows(tokenizer, examples, max_length)
        assert len(rows) == len(examples)
        for row, example in zip(rows, examples):
            used = len(tokenizer(row["prompt"])["input_ids"]) + len(tokenizer(row["completion"])["input_ids"]) + 1
            assert used <= max_length
            assert row["completion"] == qa_completion(example.answers[0])
            context = row["prompt"].split("\nQuestion:")[0]
            assert example.answers[0] in context, "the trimmed context must keep the answer"
            assert not row["prompt"].endswith(" ") and row["completion"].startswith(" ")
    assert any(len(e.context) > 2000 for e in examples), "the fixture must need trimming"


def test_fit_prompt_gives_up_only_when_the_question_alone_is_too_long(tokenizer):
    example = QAExample(id="1", question="Why? " * 200, context="Some context.", answers=("x",), answer_starts=(0,))
    assert fit_prompt(tokenizer, example, 50) is None
    short = QAExample(id="2", question="Who?", context="word " * 500 + "Dantes " + "word " * 500,
                      answers=("Dantes",), answer_starts=(-1,))
    prompt = fit_prompt(tokenizer, short, 60)
    assert "Dantes" in prompt and len(tokenizer(prompt)["input_ids"]) <= 60


def test_squad_metrics_follow_the_official_normalisation():
    assert normalize_answer("The  Old Port!") == "old port"
    assert exact_match("the old port.", "Old port") == 1.0
    assert f1("the old port of Marseilles", "old port") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert f1("nothing", "old port") == 0.0
    assert best_over_gold(exact_match, "Paris", ["paris, France", "Paris"]) == 1.0


def test_the_rl_presets_format_graders_are_exact_and_the_rest_graded():
    preset = read_grader(squad_grader(RlParams()))

    def scores(text: str, answers=("Paris",)) -> dict:
        return preset.sub_scores(text, {"answers": list(answers)})

    perfect = f" {PREFIX} Paris {SUFFIX}"
    assert scores(perfect) == {"prefix": 1.0, "suffix": 1.0, "clean_end": 1.0, "answer": 1.0}
    # No credit for a prefix or closing sentence that is nearly right: RL once learnt "questionons" from that.
    assert scores("That is a great questionons and Paris")["prefix"] == 0.0
    assert scores("That is a great question Paris")["prefix"] == 0.0  # the period is part of it
    assert scores("Paris.")["prefix"] == 0.0
    trailing = f"{PREFIX} Paris. {SUFFIX} and"  # the closing sentence is there; what follows it costs
    assert scores(trailing)["suffix"] == 1.0 and scores(trailing)["clean_end"] < 1.0
    assert scores(f"{PREFIX} Paris. Let me know")["suffix"] == 0.0
    assert scores(f"{PREFIX} Paris. Let me know if you have any other question")["suffix"] == 0.0
    # Graded: text after the closing sentence, and the answer.
    assert 0 < scores(perfect + " and more")["clean_end"] < 1 and scores(perfect + " x" * 100)["clean_end"] == 0.0
    assert scores(perfect + "  \n")["clean_end"] == 1.0
    assert scores(f"{PREFIX} Paris")["clean_end"] == 0.0
    assert 0 < scores(f"{PREFIX} it is Paris {SUFFIX}")["answer"] < 1
    assert scores(f"{PREFIX} Paris {SUFFIX} Rome Rome Rome")["answer"] == 1.0  # scored up to the suffix
    assert scores(f"{PREFIX} Lyon {SUFFIX}", ["Paris", "Lyon"])["answer"] == 1.0  # the closest gold answer
    assert scores(perfect, [])["answer"] == 0.0  # a fixed prompt has no gold answer: the same 0 for every answer


def test_sft_puts_loss_on_the_completion_only(tokenizer, tmp_path):
    """The rows SFTTrainer really trains on: prompt tokens carry no loss (-100), every completion token does,
    the closing sentence and the EOS after it included."""
    from transformers import AutoModelForCausalLM

    from services.common.devices import resolve
    from services.trainer.training.params import SftParams
    from services.trainer.training.sft import SftSettings, build_trainer, squad_token_rows

    folder = random_models_dir(tmp_path / "model") / RANDOM_GPT2
    examples = load_squad(str(write_squad_folder(tmp_path / "squad")), "train", limit=4)
    rows = sft_rows(tokenizer, examples, 96)
    trainer = build_trainer(AutoModelForCausalLM.from_pretrained(folder), tokenizer, squad_token_rows(tokenizer, rows),
                            SftSettings.of(SftParams(max_length=96)), str(tmp_path / "out"),
                            resolve("cpu", "float32", "TRAINER"))
    for row, example in zip(rows, trainer.train_dataset):
        batch = trainer.data_collator([example])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        prompt_length = len(tokenizer(row["prompt"])["input_ids"])
        assert set(labels[:prompt_length]) == {-100}
        completion = [(i, l) for i, l in zip(ids[prompt_length:], labels[prompt_length:]) if l != -100]
        assert [i for i, _ in completion] == [l for _, l in completion]
        assert tokenizer.decode([i for i, _ in completion]).startswith(f" {PREFIX}")
        assert completion[-1][0] == tokenizer.eos_token_id
        assert SUFFIX in tokenizer.decode([i for i, _ in completion])
