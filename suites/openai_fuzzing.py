"""What suites/fuzz_grpc.py sends to the OpenAI-compatible services (OpenAiService, OpenAiStreamService,
TokenizerService) beyond a random value per field (what it asks of their answers: suites/openai_answers.py).

Random values alone rarely get past the first check (a model that is not served, a role that is none), so these
fields draw mostly from what reaches the engine: "base", the three roles, text parts, small budgets, n 1..8,
logprobs in range, the response formats; and still, now and then, from the extremes (huge n, negative budgets,
NaN penalties, token ids past the vocabulary or negative on the wire). JSON Schemas come from three kinds: valid
ones, hard ones (refused, or satisfied by no value), and nonsense built from JSON Schema's own keywords with values of the wrong type.
"""

from google.protobuf import struct_pb2
from hypothesis import strategies as st
from textgen.v1 import openai_pb2, tools_pb2


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
PROMPT = st.one_of(WORDS, st.lists(WORDS, max_size=2), JSON).map(as_value)
STOPS = st.one_of(WORDS, st.lists(WORDS, max_size=6), JSON).map(as_value)
RESPONSE_FORMAT = st.builds(
    openai_pb2.ResponseFormat,
    type=st.sampled_from(["json_schema", "json_schema", "json_object", "text", "", "JSON", "xml"]),
    json_schema=st.one_of(st.none(), st.builds(
        openai_pb2.JsonSchemaFormat, name=st.sampled_from(["answer", "a-b_1", "", "x" * 65, "a b", "ü"]),
        schema=SCHEMAS.map(as_struct), strict=st.one_of(st.none(), st.booleans()))))


TOOL = st.builds(tools_pb2.Tool, type=st.sampled_from(["function", "function", "retrieval", ""]),
                 function=st.builds(tools_pb2.FunctionDefinition,
                                    name=st.sampled_from(["get_weather", "get_weather", "f", "", "a b", "x" * 65]),
                                    description=SHORT_WORDS, parameters=SCHEMAS.map(as_struct)))
TOOL_CHOICE = st.one_of(
    st.sampled_from(["auto", "required", "none", "", "sometimes"]).map(as_value),
    st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.sampled_from(["get_weather", "f", "nope"])})}).map(as_value), JSON.map(as_value))
CALL = st.builds(tools_pb2.ToolCall, id=st.sampled_from(["call_1", "call_2", ""]), type=st.just("function"),
                 function=st.builds(tools_pb2.FunctionCall, name=st.sampled_from(["get_weather", "", "a b"]),
                                    arguments=st.sampled_from(['{"city":"Paris"}', "{", "", "[]"])))
TOOL_MESSAGE = st.one_of(
    st.builds(openai_pb2.ChatMessage, role=st.just("assistant"), tool_calls=st.lists(CALL, min_size=1, max_size=2)),
    st.builds(openai_pb2.ChatMessage, role=st.just("tool"), content=CONTENT,
              tool_call_id=st.sampled_from(["call_1", "call_2", "call_9", ""])))


MESSAGE = st.one_of(st.builds(openai_pb2.ChatMessage, role=ROLES, content=CONTENT), TOOL_MESSAGE)
MESSAGES = st.lists(MESSAGE, max_size=4)


def _reaching_tools(schemas: list) -> list:
    return [tools_pb2.Tool(type="function", function=tools_pb2.FunctionDefinition(
        name=f"f{i}", parameters=as_struct(schema))) for i, schema in enumerate(schemas)]


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
    "tools": st.lists(TOOL, max_size=3), "tool_choice": TOOL_CHOICE,
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
    "tools": st.lists(st.sampled_from(VALID_SCHEMAS), max_size=3).map(_reaching_tools),
    "tool_choice": st.sampled_from(["auto", "required", "none"]).map(as_value),
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
