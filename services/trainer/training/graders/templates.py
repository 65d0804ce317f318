"""OpenAI's grader templates: `{{sample.output_text}}` (the sampled answer's text) and `{{item.<field>}}` (a field
of the training line, a dotted path into nested objects, a digit indexing an array). Anything else between double
braces is refused when the grader is read, so a grader never fails halfway through a training run."""
import dataclasses
import json
import re

from services.trainer.training.graders.problems import GraderProblem

SAMPLE_TEXT = ("sample", "output_text")
SUPPORTED = "{{sample.output_text}} and {{item.<field>}} (a dotted path into the training line, e.g. {{item.answer}})"
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SAMPLE_ONLY = "only the sampled answer's text is graded here (no output_json, output_tools or choices)"


class MissingItemField(LookupError):
    """A training line lacks a field a template references; `missing_field` lets the caller catch this up front."""

    def __init__(self, field: str):
        super().__init__(f"the training line has no field {field!r}, which the grader's templates reference")
        self.field = field


@dataclasses.dataclass(frozen=True)
class Template:
    """A template read once: literal text and references, so rendering never re-parses."""
    text: str
    parts: tuple  # each a literal str, or a reference: a tuple of path segments starting with "sample" or "item"

    def fields(self) -> list[str]:
        """The item fields referenced, as dotted paths without `item.`, in order of appearance."""
        return [".".join(part[1:]) for part in self.parts if isinstance(part, tuple) and part[0] == "item"]

    def render(self, output_text: str, item: dict) -> str:
        pieces = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
            elif part == SAMPLE_TEXT:
                pieces.append(output_text)
            else:
                found, value = lookup(item, part[1:])
                if not found:
                    raise MissingItemField(".".join(part[1:]))
                pieces.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        return "".join(pieces)


def lookup(item, path) -> tuple[bool, object]:
    """(found, value) of a dotted path; a found null is found, so it renders as `null` rather than failing."""
    value = item
    for segment in path:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return False, None
    return True, value


def _reference(inner: str, param: str) -> tuple:
    segments = tuple(segment.strip() for segment in inner.split("."))
    refused = None
    if segments[0] == "sample":
        if segments != SAMPLE_TEXT:
            refused = _SAMPLE_ONLY
    elif segments[0] == "item":
        if len(segments) == 1:
            refused = "it names no field of the training line"
        elif not all(segments[1:]):
            refused = "its field path has an empty part"
    else:
        refused = f"{segments[0]!r} is not a template namespace (there are two: sample and item)"
    if refused:
        raise GraderProblem(param, f"{param} uses {{{{{inner}}}}}, which is not supported here: {refused}. "
                                   f"Templates may use {SUPPORTED}.")
    return segments


def parse_template(text: str, param: str) -> Template:
    parts, end = [], 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > end:
            parts.append(text[end:match.start()])
        parts.append(_reference(match.group(1).strip(), param))
        end = match.end()
    if end < len(text):
        parts.append(text[end:])
    return Template(text, tuple(parts))
