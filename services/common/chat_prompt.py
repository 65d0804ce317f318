"""A chat's messages as the prompt the model reads: the base model's chat template when its tokenizer has one, else a
plain template; and the QA form, the one message an adapter trained on the QA prompt is asked in.

The plain template (GPT-2 and other models without a chat template) writes each message on a line of its own as
`System: ...`, `User: ...` or `Assistant: ...` and ends with `Assistant:`, after the end-of-text token that opens a
document; the answer stops where the model starts a line `User:` (and the answer leaves that out).
"""
import re

import jinja2

PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_STOPS = ("\nUser:",)
# A question in the QA prompt's own words (services/common/prompts.py): an optional `Context:` and a `Question:`,
# optionally closed by `Answer:`.
_QA_FORM = re.compile(r"\s*(?:Context:(?P<context>.*?)\n\s*)?Question:(?P<question>.*?)(?:\n\s*Answer:)?\s*",
                      re.DOTALL)


class TemplateRefused(ValueError):
    """The model's chat template raised on these messages (some insist that roles alternate)."""


def qa_form(text: str) -> tuple[str, str] | None:
    """(question, context) when `text` is a question in the QA form, else None."""
    found = _QA_FORM.fullmatch(text)
    return (found["question"].strip(), (found["context"] or "").strip()) if found else None


def plain_template(messages: list[tuple[str, str]], add_generation_prompt: bool = True) -> str:
    turns = "".join(f"{PLAIN_ROLES[role]}: {text}\n" for role, text in messages)
    return turns + f"{PLAIN_ROLES['assistant']}:" if add_generation_prompt else turns


def chat_text(tokenizer, messages: list[tuple[str, str]], add_generation_prompt: bool = True,
              tools: list[dict] | None = None) -> str:
    """The prompt's text for (role, text) messages, special tokens written out (the plain template opens the document
    with the end-of-text token); `add_generation_prompt` opens the assistant's turn at the end; `tools` (OpenAI's
    tool objects) go to a chat template that writes them."""
    if not tokenizer.chat_template:
        return tokenizer.eos_token + plain_template(messages, add_generation_prompt)
    try:
        return tokenizer.apply_chat_template([{"role": role, "content": content} for role, content in messages],
                                             add_generation_prompt=add_generation_prompt, tokenize=False, tools=tools)
    except jinja2.TemplateError as error:
        raise TemplateRefused(f"the model's chat template refuses these messages: {error}") from None


def chat_prompt(tokenizer, messages: list[tuple[str, str]], add_generation_prompt: bool = True,
                tools: list[dict] | None = None) -> tuple[list[int], tuple[str, ...]]:
    """The prompt's token ids for (role, text) messages, and the stop strings the template implies;
    `add_generation_prompt` opens the assistant's turn at the end; `tools` as for chat_text."""
    text = chat_text(tokenizer, messages, add_generation_prompt, tools)
    if not tokenizer.chat_template:
        ids = tokenizer(text[len(tokenizer.eos_token):], add_special_tokens=False)["input_ids"]
        return [tokenizer.eos_token_id, *ids], PLAIN_STOPS
    # The template writes the special tokens itself (a begin-of-text token, turn markers).
    return tokenizer(text, add_special_tokens=False)["input_ids"], ()
