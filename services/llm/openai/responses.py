"""The OpenAI-compatible answers made of finished (or streaming) `Request`s, one per choice: chat.completion and
text_completion objects, and their chunks in a stream: for each choice the first (the role, and the forced lead of a
QA answer), one per text piece (or piece of a tool call), the last with the finish reason; then the usage when asked
for, or instead an error. An answer that may call tools is read as its text or its calls (services/llm/openai/tools.py).
Log probabilities come in OpenAI's two shapes: chat's list of tokens with their alternatives, and completions'
parallel lists."""
import time
import uuid
from collections.abc import Callable

import grpc
from google.protobuf import struct_pb2
from textgen.v1 import openai_pb2, tools_pb2

from services.llm.openai.tool_stream import CallPieces
from services.llm.openai.tools import read_calls
from services.llm.request import Request
from services.llm.states import StopReason
from textgen.openai_error_body import error_body

NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
TokenBytes = Callable[[int], bytes]  # a token id's bytes (constraints.JsonGrammars.token_bytes)


def finish_reason(request: Request, called: bool = False) -> struct_pb2.Value:
    reason = "length" if request.stop_reason == StopReason.LENGTH else "tool_calls" if called else "stop"
    return struct_pb2.Value(string_value=reason)


def _message(request: Request) -> tuple[openai_pb2.AssistantMessage, bool]:
    """The choice's message, and whether it calls tools."""
    text = request.final_text()[0]
    if not request.reads_tool_calls:
        return openai_pb2.AssistantMessage(role="assistant", content=text), False
    content, calls = read_calls(text)
    return openai_pb2.AssistantMessage(role="assistant", content=content, tool_calls=[tools_pb2.ToolCall(
        id=call.id, type="function", function=tools_pb2.FunctionCall(name=call.name, arguments=call.arguments))
        for call in calls]), bool(calls)


def usage(requests: list[Request]) -> openai_pb2.Usage:
    """The prompt once, every choice's tokens; cached_tokens: what the prefix cache saved the first choice."""
    prompt, generated = len(requests[0].prompt_ids), sum(len(request.generated) for request in requests)
    return openai_pb2.Usage(prompt_tokens=prompt, completion_tokens=generated, total_tokens=prompt + generated,
                            prompt_tokens_details=openai_pb2.PromptTokensDetails(
                                cached_tokens=requests[0].cached_tokens))


class Logprobs:
    """A request's log probabilities from token `start` to `end`, in either shape."""

    def __init__(self, token_bytes: TokenBytes) -> None:
        self.token_bytes = token_bytes

    def _token(self, token: int) -> tuple[str, list[int]]:
        raw = self.token_bytes(token)
        return raw.decode("utf-8", errors="replace"), list(raw)

    def chat(self, request: Request, start: int, end: int) -> openai_pb2.ChatLogprobs | None:
        if request.top_logprobs is None:
            return None
        content = []
        for token, chosen in zip(request.generated[start:end], request.logprobs[start:end]):
            text, raw = self._token(token)
            top = [openai_pb2.TopLogprob(token=t, logprob=logprob, bytes=b)
                   for (t, b), logprob in ((self._token(other), logprob) for other, logprob in chosen.top)]
            content.append(openai_pb2.TokenLogprob(token=text, logprob=chosen.logprob, bytes=raw, top_logprobs=top))
        return openai_pb2.ChatLogprobs(content=content)

    def completion(self, request: Request, start: int, end: int, offset: int) -> openai_pb2.CompletionLogprobs | None:
        """`offset`: where token `start` begins in the choice's text."""
        if request.top_logprobs is None:
            return None
        shaped = openai_pb2.CompletionLogprobs()
        for token, chosen in zip(request.generated[start:end], request.logprobs[start:end]):
            text = self._token(token)[0]
            shaped.tokens.append(text)
            shaped.token_logprobs.append(chosen.logprob)
            shaped.top_logprobs.add().update({self._token(other)[0]: logprob for other, logprob in chosen.top})
            shaped.text_offset.append(offset)
            offset += len(text)
        return shaped


def _identity(prefix: str, model: str) -> dict:
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}


def chat_completion(model: str, requests: list[Request], logprobs: Logprobs) -> openai_pb2.ChatCompletion:
    choices = [openai_pb2.ChatChoice(index=index, message=message, finish_reason=finish_reason(request, called),
                                     logprobs=logprobs.chat(request, 0, len(request.generated)))
               for index, request in enumerate(requests) for message, called in [_message(request)]]
    return openai_pb2.ChatCompletion(**_identity("chatcmpl", model), object="chat.completion", choices=choices,
                                     usage=usage(requests))


def completion(model: str, requests: list[Request], logprobs: Logprobs) -> openai_pb2.Completion:
    choices = [openai_pb2.CompletionChoice(
        index=index, text=request.final_text()[0], finish_reason=finish_reason(request),
        logprobs=logprobs.completion(request, 0, len(request.generated), len(request.lead)))
        for index, request in enumerate(requests)]
    return openai_pb2.Completion(**_identity("cmpl", model), object="text_completion", choices=choices,
                                 usage=usage(requests))


class Chunks:
    """One streamed answer's chunks, all with the same id, for each of its choices; `chat` picks
    chat.completion.chunk over text_completion."""

    def __init__(self, model: str, requests: list[Request], chat: bool, logprobs: Logprobs) -> None:
        self.requests, self.chat, self.logprobs = requests, chat, logprobs
        self.identity = _identity("chatcmpl" if chat else "cmpl", model)
        self.sent = [""] * len(requests)  # each choice's text so far
        self.pieces = [CallPieces() if request.reads_tool_calls else None for request in requests]
        self.tokens_sent = [0] * len(requests)  # and the tokens whose log probabilities went with it

    def _chunk(self, choices=(), **fields):
        if self.chat:
            return openai_pb2.ChatCompletionChunk(**self.identity, object="chat.completion.chunk", choices=choices,
                                                  **fields)
        return openai_pb2.CompletionChunk(**self.identity, object="text_completion", choices=choices, **fields)

    def _choice(self, index: int, text: str | None, tokens: int, finish: struct_pb2.Value = NULL,
                role: str | None = None):
        request, start = self.requests[index], self.tokens_sent[index]
        self.tokens_sent[index] = tokens
        if self.chat:
            calls = []
            if self.pieces[index] is not None and text:  # text that may be tool calls: read as content or calls
                text, calls = self.pieces[index].feed(text)
            return openai_pb2.ChatChunkChoice(index=index, delta=openai_pb2.ChatDelta(
                role=role, content=text, tool_calls=calls), finish_reason=finish,
                logprobs=self.logprobs.chat(request, start, tokens))
        return openai_pb2.CompletionChoice(index=index, text=text or "", finish_reason=finish, logprobs=(
            self.logprobs.completion(request, start, tokens, len(self.sent[index]) - len(text or ""))))

    def first(self) -> list:
        """Each choice's opening: the role, and the forced lead of a QA answer."""
        chunks = []
        for index, request in enumerate(self.requests):
            self.sent[index] = request.lead
            chunks.append(self._chunk([self._choice(index, request.lead, 0, role="assistant")]))
        return chunks

    def text(self, index: int, piece: str, tokens: int):
        """Choice `index`'s next piece, made of its tokens up to `tokens`."""
        self.sent[index] += piece
        return self._chunk([self._choice(index, piece, tokens)])

    def last(self, include_usage: bool) -> list:
        """What the finished choices still have to say: the rest of each one's text (the service may have completed
        the answer format) with the rest of its tokens, its finish reason, and the usage when asked for."""
        chunks = []
        for index, request in enumerate(self.requests):
            rest = request.final_text()[0][len(self.sent[index]):]
            if rest or self.tokens_sent[index] < len(request.logprobs):
                chunks.append(self.text(index, rest, len(request.generated)))
            called = request.reads_tool_calls and bool(read_calls(request.final_text()[0])[1])
            chunks.append(self._chunk([self._choice(index, None, len(request.generated),
                                                    finish_reason(request, called))]))
        if include_usage:
            chunks.append(self._chunk(usage=usage(self.requests)))
        return chunks

    def error(self, code: grpc.StatusCode, message: str):
        """The stream's last chunk when the answer failed after the stream began (the status cannot change now)."""
        body = error_body(message, code.value[0], code.name.lower())["error"]
        return self._chunk(error=openai_pb2.StreamError(message=body["message"], type=body["type"],
                                                        code=body["code"]))
