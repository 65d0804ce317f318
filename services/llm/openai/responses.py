"""The OpenAI-compatible answers made of a finished (or streaming) `Request`: chat.completion and text_completion
objects, and their chunks in a stream: the first (the role, and the forced lead of a QA answer), one per text piece,
the last with the finish reason, then the usage when asked for, or instead an error."""
import time
import uuid

import grpc
from google.protobuf import struct_pb2
from textgen.v1 import openai_pb2

from services.llm.request import Request
from services.llm.states import StopReason
from textgen.openai_error_body import error_body

NULL = struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)


def finish_reason(request: Request) -> struct_pb2.Value:
    return struct_pb2.Value(string_value="length" if request.stop_reason == StopReason.LENGTH else "stop")


def usage(request: Request) -> openai_pb2.Usage:
    prompt, generated = len(request.prompt_ids), len(request.generated)
    return openai_pb2.Usage(prompt_tokens=prompt, completion_tokens=generated, total_tokens=prompt + generated)


def _identity(prefix: str, model: str) -> dict:
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}


def chat_completion(model: str, request: Request) -> openai_pb2.ChatCompletion:
    text, _ = request.final_text()
    return openai_pb2.ChatCompletion(
        **_identity("chatcmpl", model), object="chat.completion", usage=usage(request),
        choices=[openai_pb2.ChatChoice(index=0, message=openai_pb2.AssistantMessage(role="assistant", content=text),
                                       finish_reason=finish_reason(request))])


def completion(model: str, request: Request) -> openai_pb2.Completion:
    text, _ = request.final_text()
    return openai_pb2.Completion(
        **_identity("cmpl", model), object="text_completion", usage=usage(request),
        choices=[openai_pb2.CompletionChoice(index=0, text=text, finish_reason=finish_reason(request))])


class Chunks:
    """One streamed answer's chunks, all with the same id; `chat` picks chat.completion.chunk over text_completion."""

    def __init__(self, model: str, request: Request, chat: bool) -> None:
        self.request, self.chat = request, chat
        self.identity = _identity("chatcmpl" if chat else "cmpl", model)
        self.sent = ""

    def _chunk(self, choices=(), **fields):
        if self.chat:
            return openai_pb2.ChatCompletionChunk(**self.identity, object="chat.completion.chunk", choices=choices,
                                                  **fields)
        return openai_pb2.CompletionChunk(**self.identity, object="text_completion", choices=choices, **fields)

    def _choice(self, text: str | None, finish: struct_pb2.Value = NULL, role: str | None = None):
        if self.chat:
            return openai_pb2.ChatChunkChoice(index=0, delta=openai_pb2.ChatDelta(role=role, content=text),
                                              finish_reason=finish)
        return openai_pb2.CompletionChoice(index=0, text=text or "", finish_reason=finish)

    def first(self):
        self.sent = self.request.lead
        return self._chunk([self._choice(self.request.lead, role="assistant")])

    def text(self, piece: str):
        self.sent += piece
        return self._chunk([self._choice(piece)])

    def last(self, include_usage: bool) -> list:
        """What the finished request still has to say: the rest of its text (the service may have completed the
        answer format), the finish reason, and the usage when asked for."""
        rest = self.request.final_text()[0][len(self.sent):]
        chunks = [self.text(rest)] if rest else []
        chunks.append(self._chunk([self._choice(None, finish_reason(self.request))]))
        if include_usage:
            chunks.append(self._chunk(usage=usage(self.request)))
        return chunks

    def error(self, code: grpc.StatusCode, message: str):
        """The stream's last chunk when the answer failed after the stream began (the status cannot change now)."""
        body = error_body(message, code.value[0], code.name.lower())["error"]
        return self._chunk(error=openai_pb2.StreamError(message=body["message"], type=body["type"],
                                                        code=body["code"]))
