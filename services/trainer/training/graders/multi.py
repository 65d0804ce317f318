"""OpenAI's `multi` grader, as we support it: named string_check and text_similarity graders combined by a
weighted sum (formula.py reads the weights from `calculate_output`). The score is the sum as it is, not divided by
the weights' total, as OpenAI reports it."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Multi:
    name: str
    graders: dict  # key (the name calculate_output uses) -> StringCheck or TextSimilarity, in the request's order
    weights: dict  # key -> its weight in calculate_output, 0.0 for one the formula leaves out
    calculate_output: str
    type: str = "multi"

    def fields(self) -> list[str]:
        return [field for grader in self.graders.values() for field in grader.fields()]

    def sub_scores(self, output_text: str, item: dict) -> dict[str, float]:
        return {key: grader.score(output_text, item) for key, grader in self.graders.items()}

    def score(self, output_text: str, item: dict) -> float:
        scores = self.sub_scores(output_text, item)
        return sum(self.weights[key] * score for key, score in scores.items())
