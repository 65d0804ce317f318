"""What the protos' comments say, read from the descriptor set (protoc's --include_source_info): the leading comment
of every service, method, message and field, and the allowed range and default a field's comment states.

A field's comment states them in these words, which the trainer's parameter test holds against its real ranges:
a range as `LOW..HIGH` (inclusive; `LOW..HIGH characters` for a string's length) or `> LOW and <= HIGH`, a default
as `default VALUE` (`default 80`, `default 2e-4`, `default true`, `default ""`).
"""
import json
import re

from google.protobuf import descriptor_pb2

# How SourceCodeInfo paths name what a comment stands on, by descriptor.proto's field numbers: a file's message types
# (4) and their fields (2), its services (6) and their methods (2). Kind number -> (the file's list, the members'
# number, their list).
_COMMENTED = {4: ("message_type", 2, "field"), 6: ("service", 2, "method")}
_NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
_RANGE = re.compile(rf"(?P<low>{_NUMBER})\.\.(?P<high>{_NUMBER})(?P<characters> characters)?"
                    rf"|> (?P<above>{_NUMBER}) and <= (?P<at_most>{_NUMBER})")
_DEFAULT = re.compile(r"\bdefault (\"\"|\S+?)[.,;]?(?=\s|$)", re.IGNORECASE)


def collect_comments(files: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """full name -> leading comment, whitespace folded, for every service, method, message and field."""
    comments: dict[str, str] = {}
    for file in files.file:
        for location in file.source_code_info.location:
            text, path = " ".join(location.leading_comments.split()), list(location.path)
            if not text or len(path) < 2 or path[0] not in _COMMENTED:
                continue
            kind, member_number, members = _COMMENTED[path[0]]
            outer = getattr(file, kind)[path[1]]
            name = f"{file.package}.{outer.name}"
            if len(path) == 2:
                comments[name] = text
            elif len(path) == 4 and path[2] == member_number:
                comments[f"{name}.{getattr(outer, members)[path[3]].name}"] = text
    return comments


def stated_range(comment: str) -> str | None:
    """The allowed range a field's comment states, as written: "1..512", "> 0 and <= 0.01", "1..100 characters"."""
    found = _RANGE.search(comment)
    return found.group(0) if found else None


def stated_default(comment: str) -> str | None:
    """The default a field's comment states, as written: "80", "2e-4", "true", '""'."""
    found = _DEFAULT.search(comment)
    return found.group(1) if found else None


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "e" not in text and "." not in text else value


def stated_bounds(comment: str) -> dict[str, int | float] | None:
    """The stated range in JSON Schema's words: {"minimum", "maximum"}, {"exclusiveMinimum", "maximum"}, or
    {"minLength", "maxLength"} for a string's length."""
    found = _RANGE.search(comment)
    if not found:
        return None
    if found["above"] is not None:
        return {"exclusiveMinimum": _number(found["above"]), "maximum": _number(found["at_most"])}
    low, high = _number(found["low"]), _number(found["high"])
    return {"minLength": low, "maxLength": high} if found["characters"] else {"minimum": low, "maximum": high}


def stated_default_value(comment: str) -> int | float | bool | str | None:
    """The stated default as a JSON value: 80, 0.0002, True, ""."""
    text = stated_default(comment)
    if text is None:
        return None
    try:
        return json.loads(text) if text in ('""', "true", "false") else _number(text)
    except ValueError:
        return text  # a word: kept as written
