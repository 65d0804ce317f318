"""What suites/fuzz_grpc.py asks of the OpenAI-compatible services' answers (what it sends them:
suites/openai_fuzzing.py).

An answer that came back OK must keep the contract's promises: n choices, indexed 0..n-1; usage that adds up; with
logprobs, one finite, non-positive log probability per generated token and no more alternatives than asked; with a
response_format, a finished choice is JSON, valid against the schema where jsonschema reads the schema too; with
tools, every call names one of them and its arguments are JSON valid against its parameters (in a stream cut short,
all but the call it cut). A stream's error chunk names its problem with a code the call itself could have had.
"""
import json
import math

import grpc
import jsonschema
from textgen.v1 import openai_pb2

from openai_fuzzing import as_value
from services.llm.constraints import from_struct


def _choice_count(request) -> int:
    return request.n if request.HasField("n") else 1


def _schema_of(request) -> dict | None:
    asked = request.response_format
    if asked.type == "json_object":
        return {"type": "object"}
    if asked.type == "json_schema":
        return from_struct(asked.json_schema.schema)  # as the service reads it: whole numbers as integers
    return None


def _json_problem(text: str, schema: dict, what: str = "a finished choice") -> str | None:
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"{what} is not JSON ({error}): {text[:200]!r}"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (jsonschema.SchemaError, TypeError):
        return None  # a schema jsonschema cannot read: only "it is JSON" can be asked
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    return None if error is None else f"{what} breaks the schema ({error.message}): {text[:200]!r}"


def _call_problems(request, calls: dict[int, list[tuple[str, str]]], finished: dict[int, str]) -> list[str]:
    """Each choice's calls, (name, arguments), checked against the request's tools."""
    if not calls:
        return []
    schemas = {tool.function.name: from_struct(tool.function.parameters) if tool.function.HasField("parameters")
               else {"type": "object"} for tool in request.tools}
    problems = []
    for index, made in calls.items():
        if made and finished.get(index) == "length":
            made = made[:-1]  # a stream sends the pieces of the call it cut
        for name, arguments in made:
            if name not in schemas:
                problems.append(f"a call of {name!r}, which is not one of the tools")
            elif problem := _json_problem(arguments, schemas[name], f"{name}'s arguments"):
                problems.append(problem)
    return problems


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
                      logprobs: dict[int, list[tuple[float, int]]], chat: bool,
                      calls: dict[int, list[tuple[str, str]]] | None = None) -> list[str]:
    problems = _call_problems(request, calls or {}, finished)
    n = _choice_count(request)
    if sorted(texts) != list(range(n)):
        problems.append(f"choices {sorted(texts)} for n={n}")
    reasons = {"stop", "length", "tool_calls"} if chat and len(request.tools) else {"stop", "length"}
    if sorted(finished) != sorted(texts) or not set(finished.values()) <= reasons:
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
    calls = {c.index: [(t.function.name, t.function.arguments) for t in c.message.tool_calls]
             for c in answer.choices} if chat else {}
    return _choices_problems(request, texts, finished, answer.usage, logprobs, chat, calls)


def stream_problems(method_name: str, request, chunks: list[bytes], allowed_codes: set[str]) -> list[str]:
    chat = method_name == "StreamChatCompletion"
    parsed = [(openai_pb2.ChatCompletionChunk if chat else openai_pb2.CompletionChunk).FromString(c) for c in chunks]
    if parsed and parsed[-1].HasField("error"):
        error = parsed[-1].error
        if error.code not in allowed_codes or not error.message:
            return [f"stream ended with error chunk {error}"]
        return []
    texts, finished, logprobs, usage, calls = {}, {}, {}, None, {}
    for chunk in parsed:
        usage = chunk.usage if chunk.HasField("usage") else usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content if chat else choice.text)
            for piece in choice.delta.tool_calls if chat else ():
                made = calls.setdefault(choice.index, [])
                if piece.HasField("id"):
                    made.append((piece.function.name, ""))
                elif made:
                    made[-1] = (made[-1][0], made[-1][1] + piece.function.arguments)
            if choice.finish_reason.WhichOneof("kind") == "string_value":
                finished[choice.index] = choice.finish_reason.string_value
            logprobs.setdefault(choice.index, []).extend(
                (_chat_logprobs if chat else _completion_logprobs)(choice.logprobs))
    usage = usage if request.stream_options.include_usage else None
    if request.stream_options.include_usage and usage is None:
        return ["no usage chunk though stream_options.include_usage"]
    return _choices_problems(request, texts, finished, usage, logprobs, chat, calls)


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
