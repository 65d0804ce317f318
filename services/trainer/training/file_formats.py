"""A fine-tuning file checked the way OpenAI reports it: JSONL in UTF-8, one example a line in its method's format
(chat_format: supervised, preference_format: dpo, prompt_format: reinforcement), at least MIN_EXAMPLES of them. Each
problem names its line and key (`line 7: preferred_output is missing: ...`); at most SHOWN_PROBLEMS are listed, with
a count of the rest. An upload is checked in the format of its first example; a job, in its method's. Free of heavy
imports."""
import dataclasses
import pathlib
from collections.abc import Callable

from services.trainer.training import chat_format, preference_format, prompt_format
from services.trainer.training.fine_tune_params import DPO, REINFORCEMENT, SUPERVISED
from services.trainer.training.jsonl import lines, parsed

MIN_EXAMPLES = 10
SHOWN_PROBLEMS = 10
PROBLEMS = {SUPERVISED: chat_format.example_problem, DPO: preference_format.example_problem,
            REINFORCEMENT: prompt_format.example_problem}
WHAT = {SUPERVISED: "chat example", DPO: "preference pair", REINFORCEMENT: "prompt"}


@dataclasses.dataclass
class Checked:
    examples: int
    problems: list[str]  # the first SHOWN_PROBLEMS
    more_problems: int  # beyond those
    method: str  # the format the file was checked in

    def summary(self) -> str:
        more = f" (and {self.more_problems} more)" if self.more_problems else ""
        return "; ".join(self.problems) + more


def detected(value) -> str:
    """The method whose format one parsed line is meant to be in."""
    if isinstance(value, dict) and set(value) & set(preference_format.KEYS):
        return DPO
    messages = value.get("messages") if isinstance(value, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if isinstance(last, dict) and last.get("role") == "user":
        return REINFORCEMENT  # a prompt for the model to answer: a chat example ends with the answer to learn
    return SUPERVISED


def check_file(path: pathlib.Path, method: str | None = None,
               also: Callable[[dict], str | None] = lambda value: None) -> Checked:
    """Reads the file a line at a time (its size bounds nothing but the time taken). `method` None: the format of
    the first line that parses. `also`: a further check of each line that passed (a grader's fields)."""
    examples, problems = 0, []
    for number, raw in lines(path):
        value, problem = parsed(number, raw)
        if problem is None:
            method = method or detected(value)
            wrong = PROBLEMS[method](value) or also(value)
            problem = f"line {number}: {wrong}" if wrong else None
        if problem is None:
            examples += 1
        else:
            problems.append(problem)
    method = method or SUPERVISED
    if examples + len(problems) == 0:
        problems.append(f"the file is empty: it needs one {WHAT[method]} a line")
    elif not problems and examples < MIN_EXAMPLES:
        problems.append(f"the file holds {examples} examples; fine-tuning needs at least {MIN_EXAMPLES}")
    return Checked(examples, problems[:SHOWN_PROBLEMS], max(0, len(problems) - SHOWN_PROBLEMS), method)
