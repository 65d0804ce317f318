"""A JSONL training file read a line at a time, as every fine-tuning format reads it: blank lines are not examples,
and a line that is not UTF-8 or not JSON is a problem naming its line and the byte or the parser's complaint."""
import json
import pathlib


def lines(path: pathlib.Path):
    """(line number, bytes) of each line that is not blank."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            if raw.strip():
                yield number, raw


def parsed(number: int, raw: bytes) -> tuple[object, str | None]:
    """(the line's JSON value, None) or (None, its problem)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"line {number}: not UTF-8 (byte {raw[error.start]:#04x} at byte {error.start + 1} of the line)"
    try:
        return json.loads(text), None
    except ValueError as error:
        return None, f"line {number}: not JSON ({error})"


def values(path: pathlib.Path):
    """Each line's JSON value, of a file already checked."""
    for _, raw in lines(path):
        yield json.loads(raw)
