"""A grader as trl GRPOTrainer's reward functions. trl calls each `f(prompts=, completions=, completion_ids=,
**columns)` on a batch, a completion being a string or, for a conversational prompt, a list of messages; the
training line travels in a JSON string column, `item`, because Arrow gives a column one type and lines differ in
shape. A multi becomes one function per grader, named by its key so trl logs `rewards/<key>/mean`, with the
multi's weights as `reward_weights`: trl's weighted sum of them is the multi's score."""
import functools
import json

from services.trainer.training.graders.multi import Multi

ITEM_COLUMN = "item"


def encode_item(item: dict) -> str:
    """The `item` column's value for a training line."""
    return json.dumps(item, ensure_ascii=False, sort_keys=True)


@functools.lru_cache(maxsize=4096)
def _decoded(text: str) -> dict:
    # trl repeats each line once per generation and hands it to every reward function; the dict returned is shared
    # between those calls, which only read it
    item = json.loads(text)
    if not isinstance(item, dict):
        raise ValueError(f"the {ITEM_COLUMN!r} column holds JSON {type(item).__name__}, not an object")
    return item


def decode_item(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return _decoded(value)


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # content parts, as OpenAI's messages allow: the text parts make the answer
    return "".join(part.get("text", "") for part in content
                   if isinstance(part, dict) and part.get("type") in ("text", "output_text"))


def completion_text(completion) -> str:
    """OpenAI's `sample.output_text`: the completion itself, or the last assistant message's text (a completion that
    called tools ends with the answer after them)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    for message in reversed(completion):
        if message.get("role", "assistant") == "assistant":
            return _content_text(message.get("content"))
    return ""


class GraderReward:
    """One grader as a trl reward function. A class rather than a closure so trl can pickle it, with `__name__`
    set because trl names a reward's logs by it."""

    def __init__(self, grader, name: str, item_column: str = ITEM_COLUMN):
        self.grader, self.__name__, self.item_column = grader, name, item_column

    def __call__(self, prompts=None, completions=None, completion_ids=None, **columns) -> list[float]:
        if self.item_column not in columns:
            raise KeyError(f"reward {self.__name__!r} needs the dataset's {self.item_column!r} column (each training "
                           f"line as JSON, see encode_item); the columns given are {sorted(columns)}")
        items = columns[self.item_column]
        return [self.grader.score(completion_text(completion), decode_item(item))
                for completion, item in zip(completions, items, strict=True)]

    def __repr__(self):
        return f"GraderReward({self.__name__!r})"


def reward_functions(grader, item_column: str = ITEM_COLUMN) -> tuple[list[GraderReward], list[float]]:
    """(reward_funcs, reward_weights) for GRPOTrainer / GRPOConfig: one per graded part, weights in the same order."""
    if isinstance(grader, Multi):
        return ([GraderReward(sub, key, item_column) for key, sub in grader.graders.items()],
                [grader.weights[key] for key in grader.graders])
    return [GraderReward(grader, grader.name or grader.type, item_column)], [1.0]
