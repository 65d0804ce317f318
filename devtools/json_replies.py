"""The JSON-replies data set (data/json_replies): its fixed topics, its files, and the scorer for its behaviour.

The behaviour: every assistant reply is exactly one JSON object {"topic": T, "answer": A}, T one of TOPICS and A a
non-empty string. `reply_shape` says whether one reply has it; `score` turns (reply, expected topic) pairs into the
behaviour rate (the share of replies with the shape) and the topic accuracy (the share with the shape AND the
expected topic). Both shares are over all replies, so a reply without the shape counts against both.

Importing this module loads no model: `greedy_replies` imports torch and transformers only when called. It is the
one way both build.py (the training answers) and the measurement below ask the base model.

    python -m devtools.json_replies [MODEL_FOLDER]   the base (or any local) model's rates on the held-out questions
"""
import json
import pathlib
import sys

from textgen.paths import DATA, EMBEDDED_MODEL_FOLDER, ROOT

TOPICS = ("science", "history", "geography", "cooking", "health", "technology", "language", "sport")
FOLDER = DATA / "json_replies"
QUESTIONS = FOLDER / "questions.json"  # {"train": {topic: [question, ...]}, "heldout": {topic: [...]}}
TRAIN = FOLDER / "train.jsonl"
HELDOUT = FOLDER / "heldout.jsonl"
BASE_MODEL = ROOT / "models" / EMBEDDED_MODEL_FOLDER  # where `make embedded-model` writes it (MODELS_DIR=models)
HELDOUT_NEW_TOKENS = 96  # room for a whole JSON object with a two-sentence answer


def reply_shape(text: str) -> dict | None:
    """The parsed object when `text`, stripped, is exactly one JSON object with exactly the keys topic (one of TOPICS)
    and answer (a non-empty string); None otherwise."""
    try:
        parsed = json.loads(text.strip())  # json.loads refuses trailing text, so prose or a second object fails it
    except ValueError:
        return None
    if not isinstance(parsed, dict) or set(parsed) != {"topic", "answer"}:
        return None
    topic, answer = parsed["topic"], parsed["answer"]
    if not isinstance(topic, str) or topic not in TOPICS:
        return None
    if not isinstance(answer, str) or not answer.strip():
        return None
    return parsed


def score(replies_and_topics) -> dict:
    """{"count", "behaviour_rate", "topic_accuracy"} for a list of (reply text, expected topic) pairs."""
    pairs = list(replies_and_topics)
    if not pairs:
        raise ValueError("no replies to score")
    shapes = [reply_shape(reply) for reply, _ in pairs]
    with_shape = sum(shape is not None for shape in shapes)
    right_topic = sum(shape is not None and shape["topic"] == topic for shape, (_, topic) in zip(shapes, pairs))
    return {"count": len(pairs), "behaviour_rate": with_shape / len(pairs), "topic_accuracy": right_topic / len(pairs)}


def read_jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def greedy_replies(model_folder: pathlib.Path, conversations: list[list[dict]], max_new_tokens: int,
                   batch_size: int = 16) -> list[str]:
    """The model's greedy reply to each conversation (chat template with the generation prompt), in order.

    Batched with left padding; the batches are made from the conversations in length order, so the same input
    always forms the same batches (padding changes the arithmetic slightly, and with it a greedy choice now and then).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_folder, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=torch.float32).eval()
    prompts = [tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
               for messages in conversations]
    order = sorted(range(len(prompts)), key=lambda i: (len(tokenizer(prompts[i]).input_ids), i))
    replies = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        # The template already holds the special tokens; the tokenizer must not add a BOS of its own.
        batch = tokenizer([prompts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(indices, output[:, batch.input_ids.shape[1]:]):
            replies[i] = tokenizer.decode(row, skip_special_tokens=True)
    return replies


def measure(model_folder: pathlib.Path = BASE_MODEL) -> dict:
    """The model's rates on the held-out questions: greedy, chat template, up to HELDOUT_NEW_TOKENS new tokens."""
    rows = read_jsonl(HELDOUT)
    replies = greedy_replies(model_folder, [row["messages"] for row in rows], HELDOUT_NEW_TOKENS)
    return {**score((reply, row["topic"]) for reply, row in zip(replies, rows)), "replies": replies}


if __name__ == "__main__":
    folder = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else BASE_MODEL
    result = measure(folder)
    for reply in result.pop("replies"):
        print(json.dumps(reply, ensure_ascii=False))
    print(json.dumps({"model": str(folder), **result}))
