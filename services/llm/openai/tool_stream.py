"""A streamed answer that may call tools, turned into OpenAI's deltas as it comes: text as content, or each call as
a first piece with its index, id, type and name, then pieces of its arguments' JSON string. The answer's first
character decides which (a call block starts with "<", text never does: services/llm/openai/tools.py's grammar)."""
import re

from textgen.v1 import tools_pb2

from services.llm.openai.tools import CLOSE, HEAD, new_call_id

_HEAD = re.compile(r"\n?" + HEAD)  # a call's head, after the newline that parts it from the call before
_END = "}" + CLOSE  # closes the call's object and its block; compact JSON arguments never hold it (no raw newline)


def _held_back(text: str) -> int:
    """How many of `text`'s last characters may begin the end of a call, so cannot be sent as arguments yet."""
    return next((n for n in range(min(len(text), len(_END)), 0, -1) if _END.startswith(text[-n:])), 0)


class CallPieces:
    """One choice's text so far, read as content or as calls."""

    def __init__(self) -> None:
        self.text, self.at = "", 0  # everything received; how much of it is sent
        self.calls: int | None = None  # None: still text or undecided; else the calls begun
        self.in_arguments = False

    def feed(self, piece: str) -> tuple[str | None, list[tools_pb2.ToolCallDelta]]:
        """(content, call pieces) to send for the next piece of the answer."""
        self.text += piece
        if self.calls is None and not self.text.startswith("<"):
            content, self.at = self.text[self.at:], len(self.text)
            return content or None, []
        self.calls = self.calls or 0
        deltas = []
        while True:
            rest = self.text[self.at:]
            if not self.in_arguments:
                head = _HEAD.match(rest)
                if head is None:
                    return None, deltas
                self.at += head.end()
                self.in_arguments = True
                deltas.append(tools_pb2.ToolCallDelta(index=self.calls, id=new_call_id(), type="function",
                                                      function=tools_pb2.FunctionCallDelta(name=head["name"],
                                                                                           arguments="")))
                continue
            end = rest.find(_END)
            arguments = rest[:end] if end >= 0 else rest[:len(rest) - _held_back(rest)]
            if arguments:
                deltas.append(tools_pb2.ToolCallDelta(index=self.calls, function=tools_pb2.FunctionCallDelta(
                    arguments=arguments)))
            self.at += len(arguments)
            if end < 0:
                return None, deltas
            self.at += len(_END)
            self.in_arguments, self.calls = False, self.calls + 1
