"""What suites/fuzz_grpc.py sends to the OpenAI-compatible services (OpenAiService, OpenAiStreamService,
TokenizerService) beyond a random value per field, and what it asks of their answers.

Random values alone rarely get past the first check (a model that is not served, a role that is none), so these
fields draw mostly from what reaches the engine: "base", the three roles, text parts, small budgets, n 1..8,
logprobs in range, the response formats; and still, now and then, from the extremes (huge n, negative budgets,
NaN penalties, token ids past the vocabulary or negative on the wire). JSON Schemas come from three kinds: valid
ones, hard ones (refused, or satisfied by no value), and nonsense built from JSON Schema's own keywords with values of the wrong type.

An answer that came back OK must keep the contract's promises: n choices, indexed 0..n-1; usage that adds up; with
logprobs, one finite, non-positive log probability per generated token and no more alternatives than asked; with a
response_format, a finished choice is JSON, valid against the schema where jsonschema reads the schema too. A
stream's error chunk names its problem with a code the call itself could have had.
"""
import json
import math

import grpc
import jsonschema
from google.protobuf import struct_pb2
from hypothesis import strategies as st
from textgen.v1 import openai_pb2

from services.llm.constraints import from_struct

MODELS = st.sampled_from(["base", "base", "base", "", "sft", "no-such-model", "base\u0000", "B" * 300])
ROLES = st.sampled_from(["system", "user", "assistant", "user", "tool", "", "USER"])
SHORT_WORDS = st.one_of(st.text(max_size=30), st.sampled_from(["Hi", "What is the capital of France?", "{", "\u0000",
                                                               "ｔｈｅ 船 🚀"]))
WORDS = st.one_of(SHORT_WORDS, st.just("a" * 3000))
OPENAI_FILE = openai_pb2.DESCRIPTOR.name
SERVICES = {service.full_name for service in openai_pb2.DESCRIPTOR.services_by_name.values()}
_KEYWORDS = ["type", "properties", "items", "required", "enum", "const", "minLength", "maxLength", "pattern",
             "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
             "uniqueItems", "prefixItems", "contains", "anyOf", "oneOf", "allOf", "not", "$ref", "$defs",
             "definitions", "additionalProperties", "patternProperties", "propertyNames", "minProperties",
             "maxProperties", "format", "if", "then", "else", "dependentRequired", "$schema", "$id", "nullable"]
_ATOMS = st.one_of(st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null", "nonsense",
                                    "", "#", "#/$defs/a", "#/nowhere", "http://example.com/s.json", "[", "(a+)+$",
                                    "^\\p{L}{3}$", "date-time", "email", "uuid"]),
                   st.integers(-5, 10), st.sampled_from([1e9, 1e300, -1e300, 0.5, 2**53 + 1]), st.booleans(),
                   st.none())
NONSENSE_SCHEMAS = st.recursive(
    st.dictionaries(st.sampled_from(_KEYWORDS), _ATOMS, max_size=4),
    lambda inner: st.one_of(st.dictionaries(st.one_of(st.sampled_from(_KEYWORDS), st.text(max_size=6)), inner,
                                            max_size=4),
                            st.lists(inner, max_size=3)),
    max_leaves=12)
VALID_SCHEMAS = [
    {}, {"type": "object"}, {"type": "boolean"}, {"type": "null"}, {"enum": ["red", "green", 3, None]},
    {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 8}}, "required": ["answer"],
     "additionalProperties": False},
    {"type": "array", "items": {"type": "integer", "minimum": -3, "maximum": 3}, "minItems": 1, "maxItems": 3},
    {"type": "string", "pattern": "^[a-c]{2,4}$"}, {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 3}]},
    {"$defs": {"leaf": {"type": "number"}}, "type": "object", "properties": {"x": {"$ref": "#/$defs/leaf"}},
     "required": ["x"]},
    {"type": "object", "properties": {"next": {"$ref": "#"}}},  # recursive, and optional: satisfiable
    {"const": {"a": [1, 2, {"b": None}]}}, {"type": "string", "format": "date-time"},
]
# Refused by the grammar library, satisfied by no value, or by none within any budget.
HARD_SCHEMAS = [
    {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},  # once INTERNAL at its first token
    {"not": {}}, {"enum": []}, {"type": "integer", "minimum": 5, "maximum": 3},
    {"type": "string", "minLength": 10, "maxLength": 2}, {"allOf": [{"type": "string"}, {"type": "integer"}]},
    {"type": "object", "required": ["a"], "additionalProperties": False},
    {"type": "array", "minItems": 100000}, {"type": "string", "minLength": 1000000}, {"type": "number",
                                                                                      "multipleOf": 0},
    {"type": "string", "pattern": "["}, {"$ref": "#/$defs/missing"}, {"$ref": "http://example.com/s.json"},
    {"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 2}, {"type": "nonsense"}, {"type": 5},
    {"properties": {"a": "b"}}, {"required": "a"}, {"enum": [float("nan")]}, {"minLength": -1},
    {"maxItems": 1.5}, {"pattern": "(a+)+$", "type": "string", "minLength": 40},
    {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {
        "type": "array", "minItems": 2}, "minItems": 2}, "minItems": 2}, "minItems": 2}, "minItems": 2},
]
SCHEMAS = st.one_of(st.sampled_from(VALID_SCHEMAS), st.sampled_from(HARD_SCHEMAS), NONSENSE_SCHEMAS)
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(-2**60, 2**60), WORDS),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=8)


def as_value(python) -> struct_pb2.Value:
    holder = struct_pb2.Struct()
    holder["v"] = python
    return holder.fields["v"]


def as_struct(python) -> struct_pb2.Struct | None:
    """A dict as a Struct; anything else (a nonsense schema may be a list) as None: a Struct holds only objects."""
    if not isinstance(python, dict):
        return None
    struct = struct_pb2.Struct()
    struct.update(python)
    return struct


TEXT_PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "text", "image_url", ""]), "text": WORDS})
CONTENT = st.one_of(WORDS, st.lists(TEXT_PART, max_size=3), JSON).map(as_value)
MESSAGE = st.builds(openai_pb2.ChatMessage, role=ROLES, content=CONTENT)
MESSAGES = st.lists(MESSAGE, max_size=4)
PROMPT = st.one_of(WORDS, st.lists(WORDS, max_size=2), JSON).map(as_value)
STOPS = st.one_of(WORDS, st.lists(WORDS, max_size=6), JSON).map(as_value)
RESPONSE_FORMAT = st.builds(
    openai_pb2.ResponseFormat,
    type=st.sampled_from(["json_schema", "json_schema", "json_object", "text", "", "JSON", "xml"]),
    json_schema=st.one_of(st.none(), st.builds(
        openai_pb2.JsonSchemaFormat, name=st.sampled_from(["answer", "a-b_1", "", "x" * 65, "a b", "ü"]),
        schema=SCHEMAS.map(as_struct), strict=st.one_of(st.none(), st.booleans()))))


def _extreme(value, extremes):
    return st.one_of(value, value, value, extremes)


def _ints(low: int, high: int, bits: int = 32):
    return _extreme(st.integers(low, high), st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))


def _floats(low: float, high: float):
    return _extreme(st.floats(low, high), st.floats(allow_nan=True, allow_infinity=True))


def _edged(low: float, high: float, *inside: float):
    """Floats from low to high, their ends and the other values `inside` often."""
    return st.one_of(st.floats(low, high), st.sampled_from([low, high, *inside]))


# The vocabulary of the tiny stand-in model is about 2,000 tokens: ids within it and far past it.
TOKEN_IDS = st.lists(st.one_of(st.integers(0, 2100), st.integers(0, 2**32 - 1)), max_size=40)
BUDGET = _ints(1, 12)  # max_tokens: small, since an unset one is the model's whole budget (up to 512 tokens)

# Overrides of the random value per field, by the field's name in each OpenAI message (and the native API's
# json_schema): the message types' shared names mean the same everywhere in openai.proto. WILD: mostly in range,
# sometimes far out; REACHING: always in range (and a served model), so that the request reaches the engine unless
# its schema is refused.
WILD = {
    "model": MODELS, "messages": MESSAGES, "prompt": PROMPT, "stop": STOPS, "n": _ints(1, 8),
    "max_tokens": BUDGET, "max_completion_tokens": BUDGET, "temperature": _floats(0, 2),
    "top_p": _floats(0, 1),
    "presence_penalty": _floats(-2, 2), "frequency_penalty": _floats(-2, 2), "top_logprobs": _ints(0, 20),
    "response_format": RESPONSE_FORMAT, "tokens": TOKEN_IDS,
}
REACHING_MESSAGE = st.builds(openai_pb2.ChatMessage, role=st.sampled_from(["system", "user", "assistant"]),
                             content=st.one_of(SHORT_WORDS, st.lists(st.fixed_dictionaries(
                                 {"type": st.just("text"), "text": SHORT_WORDS}), min_size=1, max_size=2)).map(
                                 as_value))
REACHING = {
    "model": st.just("base"), "messages": st.lists(REACHING_MESSAGE, min_size=1, max_size=3),
    "prompt": SHORT_WORDS.map(as_value),
    "stop": st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=4).map(as_value),
    "n": st.integers(1, 8), "max_tokens": st.integers(1, 12), "max_completion_tokens": st.integers(1, 12),
    "temperature": _edged(0, 2, 5e-324, 1e-30), "top_p": _edged(5e-324, 1),
    "presence_penalty": _edged(-2, 2), "frequency_penalty": _edged(-2, 2), "top_logprobs": st.integers(0, 20),
    "response_format": st.builds(
        openai_pb2.ResponseFormat, type=st.sampled_from(["json_schema", "json_object", "text"]),
        json_schema=st.builds(openai_pb2.JsonSchemaFormat, name=st.just("answer"), schema=SCHEMAS.map(as_struct))),
    "tokens": st.lists(st.integers(0, 1900), max_size=40),
}
FIELDS = {"textgen.v1.LlmGenerateRequest.json_schema": SCHEMAS.map(as_struct)}


def field_strategy(field, reaching: bool = False):
    """The strategy for `field` when this module has one (None: the fuzzer's random values)."""
    if field.full_name in FIELDS:
        return FIELDS[field.full_name]
    if field.file.name != OPENAI_FILE:
        return None
    if field.name == "prompt" and field.message_type is None:  # TokenizeRequest's is a plain string
        return WORDS
    if field.name == "logprobs":  # chat's is a bool, completions' 0..5 alternatives
        return st.booleans() if field.type == field.TYPE_BOOL else (st.integers(0, 5) if reaching else _ints(0, 5))
    return (REACHING if reaching else WILD).get(field.name)


def reaching(method, request):
    """`request` as the method serves it: a served model, `stream` as the method is (Envoy routes on it), a message
    to answer and a small budget."""
    fields = request.DESCRIPTOR.fields_by_name
    if "model" in fields:
        request.model = "base"
    if isinstance(request, openai_pb2.ChatCompletionRequest):
        if not request.messages:
            request.messages.add(role="user", content=as_value("Hi"))
        request.logprobs = request.logprobs or request.HasField("top_logprobs")
    if "stream" in fields:
        request.stream = method.server_streaming
    if "max_tokens" in fields and not any(request.HasField(f) for f in ("max_tokens", "max_completion_tokens")
                                          if f in fields):
        request.max_tokens = 8
    return request


def negative_token_ids(request: openai_pb2.DetokenizeRequest):
    """The request's wire bytes with negative ids added to `tokens`, as a client with a signed type might encode
    them: each a 10-byte varint that a uint32 field reads as its low 32 bits."""
    def varint(number: int) -> bytes:
        number &= 2**64 - 1
        out = bytearray()
        while True:
            out.append((number & 0x7F) | (0x80 if number > 0x7F else 0))
            number >>= 7
            if not number:
                return bytes(out)

    def encoded(ids: list[int]) -> bytes:
        tokens = openai_pb2.DetokenizeRequest.DESCRIPTOR.fields_by_name["tokens"].number
        return request.SerializeToString() + b"".join(varint(tokens << 3) + varint(i) for i in ids)

    return st.lists(st.integers(-(2**63), -1), min_size=1, max_size=3).map(encoded)


EXTRA_REQUESTS = {"textgen.v1.TokenizerService.Detokenize": negative_token_ids}


def _choice_count(request) -> int:
    return request.n if request.HasField("n") else 1


def _schema_of(request) -> dict | None:
    asked = request.response_format
    if asked.type == "json_object":
        return {"type": "object"}
    if asked.type == "json_schema":
        return from_struct(asked.json_schema.schema)  # as the service reads it: whole numbers as integers
    return None


def _json_problem(text: str, schema: dict) -> str | None:
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"a finished choice is not JSON ({error}): {text[:200]!r}"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (jsonschema.SchemaError, TypeError):
        return None  # a schema jsonschema cannot read: only "it is JSON" can be asked
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    return None if error is None else f"a finished choice breaks the schema ({error.message}): {text[:200]!r}"


def _logprob_problems(entries, asked: int) -> list[str]:
    """`entries`: (the chosen token's logprob, how many alternatives were listed) per generated token."""
    problems = []
    for logprob, alternatives in entries:
        if not (math.isfinite(logprob) and logprob <= 1e-4):
            problems.append(f"a chosen token's logprob is {logprob}")
        if alternatives > asked:
            problems.append(f"{alternatives} alternatives listed where {asked} were asked for")
    return problems[:3]


def _choices_problems(request, texts: dict[int, str], finished: dict[int, str], usage,
                      logprobs: dict[int, list[tuple[float, int]]], chat: bool) -> list[str]:
    problems = []
    n = _choice_count(request)
    if sorted(texts) != list(range(n)):
        problems.append(f"choices {sorted(texts)} for n={n}")
    if sorted(finished) != sorted(texts) or not set(finished.values()) <= {"stop", "length"}:
        problems.append(f"finish reasons {finished} for choices {sorted(texts)}")
    if usage is not None and usage.total_tokens != usage.prompt_tokens + usage.completion_tokens:
        problems.append(f"usage does not add up: {usage}")
    asked = (request.top_logprobs if request.logprobs else None) if chat else (
        request.logprobs if request.HasField("logprobs") else None)
    if asked is not None:
        if usage is not None and sum(len(entries) for entries in logprobs.values()) != usage.completion_tokens:
            problems.append(f"{sum(map(len, logprobs.values()))} tokens with logprobs for "
                            f"{usage.completion_tokens} completion tokens")
        for entries in logprobs.values():
            problems += _logprob_problems(entries, asked + (0 if chat else 1))
    # A stop string may end the text before its JSON does (as on OpenAI's API): only the rest is asked to be JSON.
    if (schema := _schema_of(request)) is not None and request.stop.WhichOneof("kind") in (None, "null_value"):
        problems += [problem for index, text in texts.items() if finished.get(index) == "stop"
                     if (problem := _json_problem(text, schema))]
    return problems


def _chat_logprobs(logprobs) -> list[tuple[float, int]]:
    return [(entry.logprob, len(entry.top_logprobs)) for entry in logprobs.content]


def _completion_logprobs(logprobs) -> list[tuple[float, int]]:
    return [(logprob, len(top.fields)) for logprob, top in zip(logprobs.token_logprobs, logprobs.top_logprobs)]


def unary_problems(method_name: str, request, answer: bytes) -> list[str]:
    chat = method_name == "CreateChatCompletion"
    if method_name not in ("CreateChatCompletion", "CreateCompletion"):
        return _tokenizer_problems(method_name, request, answer)
    answer = (openai_pb2.ChatCompletion if chat else openai_pb2.Completion).FromString(answer)
    texts = {c.index: c.message.content if chat else c.text for c in answer.choices}
    finished = {c.index: c.finish_reason.string_value for c in answer.choices}
    logprobs = {c.index: (_chat_logprobs if chat else _completion_logprobs)(c.logprobs) for c in answer.choices}
    return _choices_problems(request, texts, finished, answer.usage, logprobs, chat)


def stream_problems(method_name: str, request, chunks: list[bytes], allowed_codes: set[str]) -> list[str]:
    chat = method_name == "StreamChatCompletion"
    parsed = [(openai_pb2.ChatCompletionChunk if chat else openai_pb2.CompletionChunk).FromString(c) for c in chunks]
    if parsed and parsed[-1].HasField("error"):
        error = parsed[-1].error
        if error.code not in allowed_codes or not error.message:
            return [f"stream ended with error chunk {error}"]
        return []
    texts, finished, logprobs, usage = {}, {}, {}, None
    for chunk in parsed:
        usage = chunk.usage if chunk.HasField("usage") else usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content if chat else choice.text)
            if choice.finish_reason.WhichOneof("kind") == "string_value":
                finished[choice.index] = choice.finish_reason.string_value
            logprobs.setdefault(choice.index, []).extend(
                (_chat_logprobs if chat else _completion_logprobs)(choice.logprobs))
    usage = usage if request.stream_options.include_usage else None
    if request.stream_options.include_usage and usage is None:
        return ["no usage chunk though stream_options.include_usage"]
    return _choices_problems(request, texts, finished, usage, logprobs, chat)


def _tokenizer_problems(method_name: str, request, answer: bytes) -> list[str]:
    if method_name != "Tokenize":
        return []
    answer = openai_pb2.TokenizeResponse.FromString(answer)
    problems = []
    if answer.count != len(answer.tokens):
        problems.append(f"count {answer.count} for {len(answer.tokens)} tokens")
    if request.return_token_strs and len(answer.token_strs) != len(answer.tokens):
        problems.append(f"{len(answer.token_strs)} token_strs for {len(answer.tokens)} tokens")
    return problems


def _chat(**fields) -> openai_pb2.ChatCompletionRequest:
    return openai_pb2.ChatCompletionRequest(model="base", max_tokens=3, messages=[
        openai_pb2.ChatMessage(role="user", content=as_value("Hi"))], **fields)


# After the fuzzing, each still answers OK: (method path, request, streamed).
PLAIN_REQUESTS = [
    ("/textgen.v1.OpenAiService/CreateChatCompletion", _chat(n=2, logprobs=True, top_logprobs=2), False),
    ("/textgen.v1.OpenAiStreamService/StreamChatCompletion", _chat(stream=True, response_format=openai_pb2.
                                                                   ResponseFormat(type="json_object")), True),
    ("/textgen.v1.TokenizerService/Tokenize", openai_pb2.TokenizeRequest(prompt="Hi"), False),
]


def still_answers(channel, metadata) -> list[str]:
    problems = []
    for path, request, streamed in PLAIN_REQUESTS:
        make = channel.unary_stream if streamed else channel.unary_unary
        try:
            answer = make(path, request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=bytes)(request, timeout=30, metadata=metadata)
            if streamed:
                list(answer)
        except grpc.RpcError as error:
            problems.append(f"{path} after the fuzzing: {error.code().name} {error.details()!r:.300}")
    return problems
