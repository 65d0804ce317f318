"""What a request is and how it ended, as types: the planner sets the `Mode`, decoding the `StopReason`. Both are
strings too, as the responses, logs and metric labels spell them."""
import enum


class Mode(enum.StrEnum):
    QA = "qa"  # the native API's question answered in the answer format
    TEXT = "text"  # the native API's text continued from a start word
    CHAT = "chat"  # OpenAI's chat completion
    COMPLETION = "completion"  # OpenAI's (legacy) completion


class StopReason(enum.StrEnum):
    SUFFIX = "suffix"  # the answer format's suffix closed the answer
    STOP = "stop"  # one of the caller's stop strings began
    EOS = "eos"  # the model's end-of-text token
    LENGTH = "length"  # the token budget is spent
    DEADLINE = "deadline"  # the call's deadline passed
    CANCELLED = "cancelled"  # the caller went away
    ERROR = "error"  # the forward pass failed: `Request.error` says why
