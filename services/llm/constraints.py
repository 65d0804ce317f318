"""Output held to JSON token by token. llguidance compiles a JSON Schema for the model's tokenizer; `{}` allows any
JSON value and `{"type": "object"}` is OpenAI's json_object. Each constrained row gets its own `JsonMatcher`. Before
the row's token is chosen, the sampler (services/llm/engine/sampling.py) sets the logits of every token the matcher
does not allow next to -inf. Once the JSON is complete, only the end-of-text token is allowed. So constrained rows
and free rows share one batch.

Nothing here imports torch: the planner builds matchers, and the sampler turns their masks into tensors.

Why llguidance: docs/benchmarks.md ("Constrained output") has the figures (python bench/bench_grammars.py). With the
embedded SmolLM2's tokenizer on this CPU, llguidance took about 200 us a token to compute the mask, apply it and move
on; xgrammar took about 130 us. A decode step takes tens of milliseconds, so the difference is under 1% of it. What
tips the choice is size: llguidance's wheel is 3 MB and needs nothing else, while xgrammar's pulls in triton (a
285 MB wheel) and apache-tvm-ffi. The grammars are built on the planner's thread. The matchers are used on the engine
thread, one at a time.
"""
import functools
import json

import llguidance
import numpy as np
from google.protobuf import struct_pb2

from services.common.errors import first_line

JSON_OBJECT = {"type": "object"}
MAX_FORCED_TOKENS = 512  # the most tokens an answer may have (max_tokens, max_new_tokens)
# No free whitespace between tokens: a small model may otherwise pad with newlines until its budget runs out.
COMPACT = {"whitespace_flexible": False}


def as_python(value: struct_pb2.Value):
    """A protobuf Value as the Python value JSON would read; whole numbers as integers (a Struct's numbers are all
    doubles, and a schema's counts, maxItems, minLength ..., must be integers). Unlike json_format's MessageToDict it
    lets NaN and infinities through, for the JSON check that reads them to refuse."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {key: as_python(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [as_python(item) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    return None if kind in (None, "null_value") else getattr(value, kind)


def _in_stated_order(schema):
    """`properties` in the order `required` lists them, then the rest by name. A Struct's fields are a map, so the
    order the client wrote them in is gone by the time the schema arrives (and a map's order changes from process to
    process); the grammar writes properties in the schema's order, so without this one request could be answered
    in two orders, by two replicas."""
    if isinstance(schema, list):
        return [_in_stated_order(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ordered = {key: _in_stated_order(value) for key, value in schema.items()}
    properties, required = ordered.get("properties"), ordered.get("required")
    if isinstance(properties, dict):
        first = [name for name in required if isinstance(name, str) and name in properties] \
            if isinstance(required, list) else []
        names = list(dict.fromkeys([*first, *sorted(properties)]))
        ordered["properties"] = {name: properties[name] for name in names}
    return ordered


def from_struct(schema: struct_pb2.Struct) -> dict:
    """A JSON Schema from a protobuf Struct (as_python's numbers, properties in _in_stated_order)."""
    return _in_stated_order({key: as_python(item) for key, item in schema.fields.items()})


class SchemaRefused(ValueError):
    """The schema cannot be compiled; the message says why (llguidance's words)."""


class JsonMatcher:
    """Where one row's output stands in its grammar."""

    def __init__(self, matcher: llguidance.LLMatcher, vocabulary: int) -> None:
        self._matcher, self._vocabulary = matcher, vocabulary

    def allowed(self) -> np.ndarray:
        """Which tokens may come next, as bools over the tokenizer's vocabulary."""
        bits = np.unpackbits(np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
        return bits[:self._vocabulary].astype(bool)

    def accept(self, token: int) -> None:
        """Moves past `token`; a token the mask did not allow is an error naming the grammar's complaint."""
        if not self._matcher.consume_token(token):
            raise RuntimeError(f"the JSON grammar refused token {token}: {first_line(self._matcher.get_error())}")

    def copy(self) -> "JsonMatcher":
        return JsonMatcher(self._matcher.deep_copy(), self._vocabulary)


class JsonGrammars:
    """Compiles schemas into matchers for one tokenizer (building its token table takes about half a second)."""

    def __init__(self, tokenizer) -> None:
        import llguidance.hf  # it imports transformers: the planner's module stays free of it until it is needed

        self._tokenizer = llguidance.hf.from_tokenizer(tokenizer)
        self._vocabulary = self._tokenizer.vocab_size

    def matcher(self, schema: dict) -> JsonMatcher:
        """A matcher at the start of `schema`; SchemaRefused when llguidance cannot compile it."""
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=COMPACT)
        except (ValueError, TypeError) as error:
            raise SchemaRefused(str(error)) from None
        return self._compiled(grammar)

    def lark_matcher(self, lark: str) -> JsonMatcher:
        """A matcher at the start of a Lark grammar (llguidance's, JSON Schemas inside it as `%json {...}`: tool
        calls, services/llm/openai/tools.py); SchemaRefused when it cannot be compiled."""
        try:
            grammar = llguidance.LLMatcher.grammar_from_lark(lark)
        except (ValueError, TypeError) as error:
            raise SchemaRefused(str(error)) from None
        return self._compiled(grammar)

    def _compiled(self, grammar: str) -> JsonMatcher:
        refused, problems = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, self._tokenizer)
        if refused:
            raise SchemaRefused("; ".join(problems) or "the schema cannot be compiled")
        matcher = llguidance.LLMatcher(self._tokenizer, grammar)
        if matcher.is_error():
            raise SchemaRefused(first_line(matcher.get_error()))
        probe = matcher.deep_copy()
        if len(probe.compute_ff_tokens()) >= MAX_FORCED_TOKENS or probe.is_error():
            raise SchemaRefused(f"it forces {MAX_FORCED_TOKENS} tokens or more before any choice, so no answer "
                                "within the token budget is valid JSON (does a required property refer to itself?)")
        return JsonMatcher(matcher, self._vocabulary)

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (a byte-level token may hold part of a character)."""
        return self._tokenizer.decode_bytes([token])


@functools.cache
def grammars_for(tokenizer) -> JsonGrammars:
    """The one JsonGrammars of a tokenizer (the planner's: it warms this up on its thread once the model is loaded)."""
    return JsonGrammars(tokenizer)
