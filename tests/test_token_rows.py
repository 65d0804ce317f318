"""The rows every SFT run trains on: SQuAD's prompt/completion rows tokenized exactly as trl tokenizes them itself
(so the seed's SFT trains on what it trained on before the one SFT path), and chat examples through the model's chat
template with only the assistant messages of weight 1 carrying the loss, their turn's end included; an example
longer than max_length is cut and counted, never silently."""
import pytest
from transformers import AutoTokenizer

from devtools.models import RANDOM_GPT2, build_tiny_llama, random_models_dir
from devtools.squad import write_squad_folder
from services.trainer.training.chat_format import Message
from services.trainer.training.data import load_squad, sft_rows
from services.trainer.training.token_rows import IGNORED, chat_row, chat_rows

# A ChatML template as SmolLM2-Instruct's (without its default system prompt), written out by hand.
CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CONVERSATION = [Message("system", "Be brief.", False), Message("user", "Hi", False),
                Message("assistant", "Hello.", False), Message("user", "Bye", False),
                Message("assistant", "Goodbye.", True)]


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    return random_models_dir(tmp_path_factory.mktemp("rows")) / RANDOM_GPT2


def trained(tokenizer, row: dict) -> str:
    return tokenizer.decode([label for label in row["labels"] if label != IGNORED])


def test_squad_rows_are_the_ones_trl_makes_of_prompt_and_completion(gpt2_folder, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from services.trainer.training.sft import squad_token_rows

    tokenizer = AutoTokenizer.from_pretrained(gpt2_folder)
    rows = sft_rows(tokenizer, load_squad(str(write_squad_folder(tmp_path / "squad")), "train", limit=6), 96)
    trl_made = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(gpt2_folder), processing_class=tokenizer,
                          train_dataset=Dataset.from_list(rows),
                          args=SFTConfig(output_dir=str(tmp_path / "out"), max_length=96, report_to=[],
                                         use_cpu=True, bf16=False)).train_dataset
    ours = squad_token_rows(tokenizer, rows)
    assert [row["input_ids"] for row in ours] == trl_made["input_ids"]
    assert [row["labels"] for row in ours] == trl_made["labels"]
    assert all(row["labels"][0] == IGNORED and row["labels"][-1] == tokenizer.eos_token_id for row in ours)


def test_a_chat_without_a_template_trains_the_weighted_answer_and_its_end_of_text(gpt2_folder):
    tokenizer = AutoTokenizer.from_pretrained(gpt2_folder)
    assert not tokenizer.chat_template  # the plain template: System:/User:/Assistant: lines
    row = chat_row(tokenizer, CONVERSATION)
    assert trained(tokenizer, row) == " Goodbye.\n" + tokenizer.eos_token
    assert tokenizer.decode(row["input_ids"]).startswith(tokenizer.eos_token + "System: Be brief.\nUser: Hi\n")
    assert len(row["labels"]) == len(row["input_ids"])


def test_a_chat_through_a_template_trains_each_weighted_answer_with_its_turn_end(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path / "llama"))
    tokenizer.chat_template = CHATML
    assert trained(tokenizer, chat_row(tokenizer, CONVERSATION)) == "Goodbye.<|im_end|>\n"
    both = [m if m.role != "assistant" else Message("assistant", m.content, True) for m in CONVERSATION]
    assert trained(tokenizer, chat_row(tokenizer, both)) == "Hello.<|im_end|>\nGoodbye.<|im_end|>\n"


def test_the_embedded_models_own_template(embedded_models_dir):
    from services.common import embedded_model

    tokenizer = AutoTokenizer.from_pretrained(embedded_model.folder(embedded_models_dir))
    row = chat_row(tokenizer, CONVERSATION)
    assert trained(tokenizer, row) == "Goodbye.<|im_end|>\n"
    assert tokenizer.decode(row["input_ids"]).startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_examples_longer_than_max_length_are_cut_and_counted(gpt2_folder):
    tokenizer = AutoTokenizer.from_pretrained(gpt2_folder)
    long_answer = [Message("user", "Hi", False), Message("assistant", "word " * 40, True)]
    long_question = [Message("user", "word " * 40, False), Message("assistant", "Yes.", True)]
    short = [Message("user", "Hi", False), Message("assistant", "Yes.", True)]
    made = chat_rows(tokenizer, [short, long_answer, long_question], max_length=24)
    assert (made.truncated, made.dropped, made.refused) == (2, 1, 0)
    assert len(made.rows) == 2 and all(len(row["input_ids"]) <= 24 for row in made.rows)
    assert made.notes(3, 24) == ["2 of 3 examples are longer than 24 tokens and were truncated to their first 24; "
                                 "1 of them left out, since no trained token of theirs fits"]
