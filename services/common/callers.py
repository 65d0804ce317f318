"""Who is calling: the API key's name Envoy forwards in CLIENT_HEADER after checking the key (gateway/edge.py), which
no REST caller can set itself (Envoy removes what a caller sent). '' where the gateway checks no keys, and for a
direct gRPC call that sends none. What a key creates (a file, a fine-tuning job, the model it made) is its own: it
belongs to that name, and another name neither sees it nor uses it. What belongs to '' is everyone's."""
from collections.abc import Iterable

CLIENT_HEADER = "x-textgen-client"  # gateway/edge.py's


def caller_in(metadata: Iterable[tuple[str, str]] | None) -> str:
    return next((value for key, value in metadata or () if key == CLIENT_HEADER), "")


def caller(context) -> str:
    """The caller of the call `context` serves."""
    return caller_in(context.invocation_metadata())


def visible_to(who: str) -> tuple[str, ...]:
    """The owners whose things `who` sees: its own and everyone's."""
    return ("", who) if who else ("",)


def sees(who: str, owner: str) -> bool:
    return owner in visible_to(who)
