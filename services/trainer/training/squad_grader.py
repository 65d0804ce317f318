"""The seed's RL step (POST /llm/train_rl) as a preset of graded RL: OpenAI's multi grader of the answer format and
SQuAD F1, weighted by the request's four weights. The format is rewarded exactly: the prefix and the closing sentence
count only when they are there letter for letter (a graded prefix reward once paid 23/24 for "That is a great
questionons", and RL learnt to write that). What keeps a group's rewards apart once the format is right is graded:
how little text follows the closing sentence, and the answer's F1 against the gold answers, so RL cannot buy the
format by giving up the answer. Free of heavy imports."""
from services.common.prompts import PREFIX, SUFFIX
from services.trainer.training.params import RlParams

OUTPUT = "{{sample.output_text}}"
# Each named grader and the RlParams field that weighs it.
WEIGHTS = {"prefix": "prefix_weight", "suffix": "suffix_weight", "clean_end": "clean_end_weight",
           "answer": "answer_weight"}
GRADERS = {
    "prefix": {"type": "string_check", "name": "prefix", "input": OUTPUT, "reference": PREFIX, "operation": "like"},
    "suffix": {"type": "string_check", "name": "suffix", "input": OUTPUT, "reference": SUFFIX, "operation": "like"},
    "clean_end": {"type": "text_similarity", "name": "clean_end", "input": OUTPUT, "reference": SUFFIX,
                  "evaluation_metric": "ends_with"},
    "answer": {"type": "text_similarity", "name": "answer", "input": OUTPUT, "reference": "{{item.answers}}",
               "evaluation_metric": "squad_f1"},
}


def squad_grader(params: RlParams) -> dict:
    """The grader object, as a user would send it in method.reinforcement.grader."""
    formula = " + ".join(f"{getattr(params, field)!r} * {name}" for name, field in WEIGHTS.items())
    return {"type": "multi", "name": "answer format and SQuAD F1", "graders": GRADERS, "calculate_output": formula}
