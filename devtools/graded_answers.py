"""The graded-answers RL data set (data/graded_answers): its files, its grader and the scorer that computes it.

The task: a prompt asks for a short text about a topic that must include a given word ("... Your reply must include
the word "lantern"."), the word stored beside the prompt as the line's `keyword` field. OpenAI's `string_check` grader
judges it with the operation `ilike` (the output contains the reference, ignoring case) against `{{item.keyword}}`:
GRADER below is the exact object to give a fine-tuning job. The embedded base model follows such an instruction
sometimes but not usually, so a GRPO group of samples usually holds both passes and failures.

`string_check` computes the four operations as OpenAI's grader does, on the rendered strings as they are: NO strip.
For `ilike` against a keyword without surrounding whitespace, stripping the output could not change the result
anyway; `eq` would differ (a reply "12\\n" is not "12"), so the function keeps the grader's exact semantics for all.

Importing this module loads no model: the greedy replies come from json_replies.greedy_replies and the sampled ones
from `sampled_replies`, both importing torch and transformers only when called.

    python -m devtools.graded_answers [MODEL_FOLDER] [--samples N --temperature T]
        the greedy pass rate on the held-out prompts; with --samples, also the pass rate of N samples a prompt at
        temperature T and the share of prompts whose N samples all pass or all fail ("flat groups", which give GRPO
        no signal)
"""
import argparse
import json
import pathlib

from devtools.json_replies import BASE_MODEL, greedy_replies, read_jsonl
from textgen.paths import DATA

FOLDER = DATA / "graded_answers"
PROMPTS = FOLDER / "prompts.json"  # {"templates": [...], "train"|"heldout": {"topics": [...], "keywords": [...]}}
TRAIN = FOLDER / "train.jsonl"
HELDOUT = FOLDER / "heldout.jsonl"
REFERENCE_FIELD = "keyword"
GRADER = {"type": "string_check", "name": "includes_keyword", "input": "{{sample.output_text}}",
          "reference": "{{item.keyword}}", "operation": "ilike"}
# The answer's length, for the measurement here and for an RL job's max_new_tokens: a sentence or two.
NEW_TOKENS = 48
OPERATIONS = {
    "eq": lambda text, reference: text == reference,
    "ne": lambda text, reference: text != reference,
    "like": lambda text, reference: reference in text,
    "ilike": lambda text, reference: reference.casefold() in text.casefold(),  # as the trainer's grader folds case
}


def string_check(text: str, reference: str, operation: str) -> bool:
    """OpenAI's string_check on already rendered strings, compared as they are (no strip, no normalisation)."""
    return OPERATIONS[operation](text, reference)


def passes(output: str, item: dict) -> bool:
    """Whether GRADER passes `output` for the data set line `item` (its reference read from REFERENCE_FIELD)."""
    return string_check(output, item[REFERENCE_FIELD], GRADER["operation"])


def score(outputs_and_items) -> dict:
    """{"count", "pass_rate"} for a list of (output text, data set line) pairs."""
    pairs = list(outputs_and_items)
    if not pairs:
        raise ValueError("no outputs to score")
    return {"count": len(pairs), "pass_rate": sum(passes(output, item) for output, item in pairs) / len(pairs)}


def flat_share(groups: list[list[bool]]) -> float:
    """The share of groups whose results are all passes or all failures: GRPO's advantage is zero in those."""
    if not groups:
        raise ValueError("no groups")
    return sum(all(group) or not any(group) for group in groups) / len(groups)


def sampled_replies(model_folder: pathlib.Path, conversations: list[list[dict]], max_new_tokens: int, samples: int,
                    temperature: float, batch_size: int = 8, seed: int = 0) -> list[list[str]]:
    """`samples` replies to each conversation, sampled at `temperature` from the whole distribution (no top-k, no
    top-p, as an RL job's groups are), chat template with the generation prompt; seeded, so a re-run repeats them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_folder, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=torch.float32).eval()
    prompts = [tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
               for messages in conversations]
    groups = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        with torch.inference_mode():
            output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                                    top_k=0, top_p=1.0, num_return_sequences=samples,
                                    pad_token_id=tokenizer.pad_token_id)
        texts = [tokenizer.decode(row, skip_special_tokens=True) for row in output[:, batch.input_ids.shape[1]:]]
        groups += [texts[i:i + samples] for i in range(0, len(texts), samples)]  # the samples of a prompt adjoin
    return groups


def measure(model_folder: pathlib.Path = BASE_MODEL, samples: int = 0, temperature: float = 1.0) -> dict:
    """The greedy pass rate on the held-out prompts; with samples, the sampled pass rate and flat-group share too."""
    rows = read_jsonl(HELDOUT)
    conversations = [row["messages"] for row in rows]
    replies = greedy_replies(model_folder, conversations, NEW_TOKENS)
    result = {"greedy": score(zip(replies, rows)), "replies": replies}
    if samples:
        groups = sampled_replies(model_folder, conversations, NEW_TOKENS, samples, temperature)
        results = [[passes(text, row) for text in group] for group, row in zip(groups, rows)]
        result["sampled"] = {"samples": samples, "temperature": temperature,
                             "pass_rate": sum(map(sum, results)) / (samples * len(rows)),
                             "flat_groups": flat_share(results)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_folder", nargs="?", type=pathlib.Path, default=BASE_MODEL)
    parser.add_argument("--samples", type=int, default=0, help="samples a prompt (0: greedy only)")
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    result = measure(args.model_folder, args.samples, args.temperature)
    for reply in result.pop("replies"):
        print(json.dumps(reply, ensure_ascii=False))
    print(json.dumps({"model": str(args.model_folder), **result}))


if __name__ == "__main__":
    main()
