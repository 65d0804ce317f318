"""OpenAI's `string_check` grader: 1.0 when the rendered input and reference pass the operation, else 0.0. As
OpenAI defines them, `like` and `ilike` mean "input contains reference" (case-sensitive and case-insensitive), not
SQL's patterns: `%` and `_` are plain characters, and "starts with" cannot be expressed."""
import dataclasses

from services.trainer.training.graders.templates import Template

OPERATIONS = ("eq", "ne", "like", "ilike")


def passes(operation: str, given: str, reference: str) -> bool:
    if operation == "eq":
        return given == reference
    if operation == "ne":
        return given != reference
    if operation == "like":
        return reference in given
    if operation == "ilike":
        # casefold, not lower: "Straße" should contain "STRASSE" the way a reader expects
        return reference.casefold() in given.casefold()
    raise ValueError(f"unknown string_check operation {operation!r}")


@dataclasses.dataclass(frozen=True)
class StringCheck:
    name: str
    input: Template
    reference: Template
    operation: str
    type: str = "string_check"

    def fields(self) -> list[str]:
        return self.input.fields() + self.reference.fields()

    def score(self, output_text: str, item: dict) -> float:
        given, reference = self.input.render(output_text, item), self.reference.render(output_text, item)
        return 1.0 if passes(self.operation, given, reference) else 0.0
