"""The one exception a grader that cannot be read raises, carrying the dotted path of the field at fault so the
caller can answer OpenAI's error body (`message` and `param`) without parsing the message."""

DEFAULT_PARAM = "method.reinforcement.grader"


class GraderProblem(ValueError):
    """A grader object refused: `param` is the offending field's dotted path (e.g.
    `method.reinforcement.grader.graders.format.operation`); the message names the problem and the fix."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


def json_type(value) -> str:
    """The JSON name of a value's type, for messages written to someone who sent JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
