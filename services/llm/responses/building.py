"""The Responses API's objects made of a finished (or streaming) `Request`: the response with its output items (a
message, or the function calls the answer made: services/llm/openai/tools.py reads them), its usage and the
request's settings echoed; and, for a stream, its typed events, each item opened, filled piece by piece and closed,
between response.created and response.completed (or response.incomplete)."""
import time
import uuid

from google.protobuf import struct_pb2
from textgen.v1 import responses_pb2

from services.llm.openai.tool_stream import CallPieces
from services.llm.openai.tools import read_calls
from services.llm.request import Request
from services.llm.states import StopReason


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _message_item(item_id: str, text: str | None, status: str) -> responses_pb2.OutputItem:
    content = [] if text is None else [responses_pb2.OutputContent(type="output_text", text=text)]
    return responses_pb2.OutputItem(type="message", id=item_id, status=status, role="assistant", content=content)


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> responses_pb2.OutputItem:
    return responses_pb2.OutputItem(type="function_call", id=item_id, status=status, call_id=call_id, name=name,
                                    arguments=arguments)


def output_items(request: Request) -> list[responses_pb2.OutputItem]:
    """The finished request's output: its function calls, else its text as a message."""
    status = "incomplete" if request.stop_reason == StopReason.LENGTH else "completed"
    text = request.final_text()[0]
    content, calls = read_calls(text) if request.reads_tool_calls else (text, [])
    if calls:
        return [_call_item(new_id("fc"), call.id, call.name, call.arguments, "completed") for call in calls]
    return [_message_item(new_id("msg"), content or "", status)]


def as_messages(items: list[responses_pb2.OutputItem]) -> list[dict]:
    """The output as the chat messages a conversation that goes on from it reads."""
    calls = [{"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
             for item in items if item.type == "function_call"]
    if calls:
        return [{"role": "assistant", "content": None, "tool_calls": calls}]
    return [{"role": "assistant", "content": "".join(part.text for item in items for part in item.content)}]


def response(response_id: str, model: str, asked, request: Request | None,
             items: list[responses_pb2.OutputItem], status: str | None = None) -> responses_pb2.Response:
    """The response to `asked` (a CreateResponseRequest), with `request`'s usage when it has run."""
    made = responses_pb2.Response(
        id=response_id, object="response", created_at=int(time.time()), model=model, output=items,
        instructions=asked.instructions or None, tools=asked.tools, parallel_tool_calls=(
            asked.parallel_tool_calls if asked.HasField("parallel_tool_calls") else True),
        previous_response_id=asked.previous_response_id or None,
        store=asked.store if asked.HasField("store") else True, metadata=asked.metadata,
        tool_choice=asked.tool_choice if asked.tool_choice.WhichOneof("kind") else struct_pb2.Value(
            string_value="auto"),
        text=asked.text if asked.text.format.type else responses_pb2.TextOptions(
            format=responses_pb2.TextFormat(type="text")))
    for name in ("max_output_tokens", "temperature", "top_p"):
        if asked.HasField(name):
            setattr(made, name, getattr(asked, name))
    if request is None:
        made.status = status or "in_progress"
        return made
    made.status = "incomplete" if request.stop_reason == StopReason.LENGTH else "completed"
    if made.status == "incomplete":
        made.incomplete_details.reason = "max_output_tokens"
    prompt, generated = len(request.prompt_ids), len(request.generated)
    made.usage.CopyFrom(responses_pb2.ResponseUsage(
        input_tokens=prompt, output_tokens=generated, total_tokens=prompt + generated,
        input_tokens_details=responses_pb2.InputTokensDetails(cached_tokens=request.cached_tokens),
        output_tokens_details=responses_pb2.OutputTokensDetails(reasoning_tokens=0)))
    return made


class Events:
    """One streamed response's events, numbered in order."""

    def __init__(self, response_id: str, model: str, asked, request: Request) -> None:
        self.response_id, self.model, self.asked, self.request = response_id, model, asked, request
        self.pieces = CallPieces() if request.reads_tool_calls else None
        self.items: list[responses_pb2.OutputItem] = []  # opened so far; the last may be open
        self.text, self.sent, self.number = "", "", 0

    def _event(self, kind: str, **fields) -> responses_pb2.ResponseEvent:
        event = responses_pb2.ResponseEvent(type=kind, sequence_number=self.number, **fields)
        self.number += 1
        return event

    def _item_event(self, kind: str, **fields) -> responses_pb2.ResponseEvent:
        item = self.items[-1]
        return self._event(kind, output_index=len(self.items) - 1, item_id=item.id, **fields)

    def first(self) -> list[responses_pb2.ResponseEvent]:
        started = response(self.response_id, self.model, self.asked, None, [])
        return [self._event("response.created", response=started), self._event("response.in_progress",
                                                                                 response=started)]

    def _open_message(self) -> list[responses_pb2.ResponseEvent]:
        self.items.append(_message_item(new_id("msg"), None, "in_progress"))
        return [self._event("response.output_item.added", output_index=len(self.items) - 1, item=self.items[-1]),
                self._item_event("response.content_part.added", content_index=0,
                                 part=responses_pb2.OutputContent(type="output_text", text=""))]

    def piece(self, text: str) -> list[responses_pb2.ResponseEvent]:
        """The events of the answer's next piece of text."""
        self.sent += text
        content, calls = self.pieces.feed(text) if self.pieces is not None else (text, [])
        events = []
        if content:
            events += [] if self.items else self._open_message()
            self.text += content
            events.append(self._item_event("response.output_text.delta", content_index=0, delta=content))
        for call in calls:
            if call.HasField("id"):
                events += self._close_item("completed")
                self.items.append(_call_item(new_id("fc"), call.id, call.function.name, "", "in_progress"))
                events.append(self._event("response.output_item.added", output_index=len(self.items) - 1,
                                          item=self.items[-1]))
            elif call.function.arguments:
                self.items[-1].arguments += call.function.arguments
                events.append(self._item_event("response.function_call_arguments.delta",
                                               delta=call.function.arguments))
        return events

    def _close_item(self, status: str) -> list[responses_pb2.ResponseEvent]:
        if not self.items or self.items[-1].status != "in_progress":
            return []
        item = self.items[-1]
        item.status = status
        if item.type == "function_call":
            return [self._item_event("response.function_call_arguments.done", arguments=item.arguments),
                    self._item_event("response.output_item.done", item=item)]
        item.content.append(responses_pb2.OutputContent(type="output_text", text=self.text))
        return [self._item_event("response.output_text.done", content_index=0, text=self.text),
                self._item_event("response.content_part.done", content_index=0, part=item.content[0]),
                self._item_event("response.output_item.done", item=item)]

    def last(self) -> tuple[list[responses_pb2.ResponseEvent], responses_pb2.Response]:
        """The finished answer's closing events (the rest of its text, the open item closed, the response), and the
        response itself. A call cut short by max_output_tokens has had its pieces sent: it closes as incomplete."""
        rest = self.request.final_text()[0][len(self.sent):]
        events = self.piece(rest) if rest else []
        if not self.items:  # an empty answer is an empty message
            events += self._open_message()
        incomplete = self.request.stop_reason == StopReason.LENGTH
        events += self._close_item("incomplete" if incomplete else "completed")
        final = response(self.response_id, self.model, self.asked, self.request, list(self.items))
        kind = "response.incomplete" if incomplete else "response.completed"
        return events + [self._event(kind, response=final)], final

    def error(self, code: str, message: str) -> responses_pb2.ResponseEvent:
        return self._event("error", code=code, message=message)
