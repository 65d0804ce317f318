"""The one shape supervised fine-tuning trains on, whatever the data: a row of token ids and their labels, -100
where a token carries no loss. trl's SFTTrainer takes such rows as they are (a `labels` column is left alone).

- SQuAD's prompt/completion rows (the seed's /llm/train_sft): tokenized as trl tokenizes a prompt and its
  completion, the completion (ended by the end-of-text token) trained;
- chat examples (OpenAI's fine-tuning format): the conversation through the base model's chat template, as the llm
  service renders it to serve (services/common/chat_prompt.py), each assistant message of weight 1 trained, its
  closing turn marker included, so the model learns to end its turn there.
"""
import dataclasses

from services.common.chat_prompt import TemplateRefused, chat_prompt
from services.trainer.training.chat_format import Message

IGNORED = -100  # the label of a token that carries no loss


def _common_prefix(ids: list[int], other: list[int]) -> int:
    count = 0
    for mine, theirs in zip(ids, other):
        if mine != theirs:
            break
        count += 1
    return count


def prompt_completion_row(tokenizer, prompt: str, completion: str) -> dict:
    """trl's own tokenization of a prompt/completion row: the prompt alone, then prompt + completion + EOS; the
    completion starts where the two diverge."""
    if not completion.endswith(tokenizer.eos_token):
        completion += tokenizer.eos_token
    prompt_ids = tokenizer(text=prompt)["input_ids"]
    ids = tokenizer(text=prompt + completion)["input_ids"]
    start = _common_prefix(prompt_ids, ids)
    return {"input_ids": ids, "labels": [IGNORED] * start + ids[start:]}


def chat_row(tokenizer, messages: list[Message]) -> dict:
    """The conversation's ids with the trained assistant messages' tokens labelled. Raises TemplateRefused when the
    model's chat template refuses these messages."""
    pairs = [(m.role, m.content) for m in messages]
    ids, _ = chat_prompt(tokenizer, pairs, add_generation_prompt=False)
    labels = [IGNORED] * len(ids)
    for index, message in enumerate(messages):
        if not message.trained:
            continue
        opened, _ = chat_prompt(tokenizer, pairs[:index], add_generation_prompt=True)
        through, _ = chat_prompt(tokenizer, pairs[:index + 1], add_generation_prompt=False)
        start, end = _common_prefix(opened, through), _common_prefix(through, ids)
        labels[start:end] = ids[start:end]
    if not tokenizer.chat_template and messages[-1].trained:
        # The plain template (services/common/chat_prompt.py) has no turn marker: the answer ends at EOS.
        ids, labels = [*ids, tokenizer.eos_token_id], [*labels, tokenizer.eos_token_id]
    return {"input_ids": ids, "labels": labels}


@dataclasses.dataclass
class ChatRows:
    rows: list[dict]
    truncated: int  # examples longer than max_length, cut to it
    dropped: int  # of those, the ones with no trained token left
    refused: int  # examples the chat template refused
    first_refusal: str = ""

    def notes(self, examples: int, max_length: int) -> list[str]:
        """What a job's events say of its data: nothing is cut or left out silently."""
        notes = []
        if self.truncated:
            dropped = (f"; {self.dropped} of them left out, since no trained token of theirs fits"
                       if self.dropped else "")
            notes.append(f"{self.truncated} of {examples} examples are longer than {max_length} tokens and were "
                         f"truncated to their first {max_length}{dropped}")
        if self.refused:
            notes.append(f"{self.refused} of {examples} examples were left out: the model's chat template refuses "
                         f"them ({self.first_refusal})")
        return notes


def chat_rows(tokenizer, examples: list[list[Message]], max_length: int) -> ChatRows:
    """Rows of `examples`, each cut to `max_length` tokens (its start kept); counted, never silently."""
    result = ChatRows([], 0, 0, 0)
    for messages in examples:
        try:
            row = chat_row(tokenizer, messages)
        except TemplateRefused as error:
            result.refused += 1
            result.first_refusal = result.first_refusal or str(error)[:200]
            continue
        if len(row["input_ids"]) > max_length:
            result.truncated += 1
            row = {key: values[:max_length] for key, values in row.items()}
            if all(label == IGNORED for label in row["labels"]):
                result.dropped += 1
                continue
        result.rows.append(row)
    return result
