"""The OpenAPI document suites/fuzz_rest.py fuzzes the OpenAI paths (/v1/chat/completions, /v1/completions) and the
tokenizer's (/tokenize, /detokenize) with a second time, in schemathesis's positive mode: the same operations, with
the ranges the document states in `x-range` as JSON Schema's bounds and the values the system serves where the
document has free text (the model "base", the three roles, the response formats). Random bodies from the document
itself are refused at their first field (none of the 400 cases of one run reached the engine): with these, the
fields OpenAI's clients send (n, logprobs, top_logprobs, the penalties, response_format, stream) reach it through
Envoy, and an answer of 200 is checked against the document's schema like any other."""
import copy

PREFIX = "#/components/schemas/textgen.v1."
SHORT_TEXT = {"type": "string", "maxLength": 200}
BUDGET = {"type": "integer", "minimum": 1, "maximum": 12}  # the most tokens: small, a run stays short
# What a served request holds where the document says only "a string" (or any JSON value).
SERVED = {
    "ChatCompletionRequest": {"model": {"type": "string", "enum": ["base"]}, "max_tokens": BUDGET,
                              "max_completion_tokens": BUDGET, "messages": {
                                  "type": "array", "items": {"$ref": f"{PREFIX}ChatMessage"}, "minItems": 1,
                                  "maxItems": 3},
                              "logprobs": {"type": "boolean", "enum": [True]}},  # top_logprobs needs it
    "CompletionRequest": {"model": {"type": "string", "enum": ["base"]}, "max_tokens": BUDGET, "prompt": SHORT_TEXT},
    "TokenizeRequest": {"model": {"type": "string", "enum": ["base", ""]}, "prompt": SHORT_TEXT},
    "DetokenizeRequest": {"model": {"type": "string", "enum": ["base", ""]},
                          "tokens": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 1000}}},
    "ChatMessage": {"role": {"type": "string", "enum": ["system", "user", "assistant"]}, "content": SHORT_TEXT},
    "ResponseFormat": {"type": {"type": "string", "enum": ["text", "json_object", "json_schema"]}},
    "JsonSchemaFormat": {"name": {"type": "string", "pattern": "^[a-z]{1,8}$"}},
}
REQUIRED = {"ChatCompletionRequest": ["model", "messages", "max_tokens"], "CompletionRequest": ["model", "max_tokens"],
            "ChatMessage": ["role", "content"], "JsonSchemaFormat": ["name"]}
COMMON = {  # fields of every served request
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31},  # proto3 JSON takes a number for an int64
    "stop": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 3}, "minItems": 1,
             "maxItems": 4},
}
# Left out until fixed (issue 33's fuzzing report): a top_p that float32 rounds to 0 (below about 1e-45) leaves the
# sampler no token, and the request waits for its deadline.
SMALLEST_TOP_P = 1e-30


def _bounded(schema: dict) -> dict:
    """A number's stated range as OpenAPI 3.0's bounds."""
    stated = schema.get("x-range", {})
    if schema.get("type") not in ("integer", "number") or not stated:
        return schema
    bounded = {**schema, **{k: v for k, v in stated.items() if k in ("minimum", "maximum")}}
    if "exclusiveMinimum" in stated:  # 2019's number is 3.0's minimum with a flag
        bounded |= {"minimum": stated["exclusiveMinimum"], "exclusiveMinimum": True}
    return bounded


def reaching_document(document: dict) -> dict:
    reaching = copy.deepcopy(document)
    schemas = reaching["components"]["schemas"]
    for name, served in SERVED.items():
        schema = schemas[f"textgen.v1.{name}"]
        properties = {key: _bounded(value) for key, value in schema["properties"].items()}
        properties |= {key: value for key, value in COMMON.items() if key in properties} | served
        if "top_p" in properties:
            properties["top_p"] = {**properties["top_p"], "minimum": SMALLEST_TOP_P, "exclusiveMinimum": False}
        schema["properties"] = properties
        schema["required"] = REQUIRED.get(name, [])
        schema["additionalProperties"] = False
        if not schema["required"]:
            del schema["required"]
    return reaching
