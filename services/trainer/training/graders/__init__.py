"""OpenAI's fine-tuning graders (`method.reinforcement.grader`): read and checked with `read_grader` (free of
heavy imports, so the trainer's server checks a request with it), scored with `grader.score(output_text, item)`, and
handed to trl's GRPOTrainer with `reward_functions`. Supported: string_check, text_similarity (fuzzy_match, bleu,
rouge_1..rouge_5, rouge_l, and our squad_f1 and ends_with), and multi as a weighted sum of those."""
from services.trainer.training.graders.multi import Multi
from services.trainer.training.graders.problems import DEFAULT_PARAM, GraderProblem
from services.trainer.training.graders.reading import item_fields, missing_field, read_grader
from services.trainer.training.graders.rewards import ITEM_COLUMN, GraderReward, encode_item, reward_functions
from services.trainer.training.graders.similarity import METRICS, TextSimilarity
from services.trainer.training.graders.string_check import StringCheck
from services.trainer.training.graders.templates import MissingItemField

__all__ = ["DEFAULT_PARAM", "GraderProblem", "GraderReward", "ITEM_COLUMN", "METRICS", "MissingItemField", "Multi",
           "StringCheck", "TextSimilarity", "encode_item", "item_fields", "missing_field", "read_grader",
           "reward_functions"]
