"""Header fuzzing for suites/fuzz_rest.py: requests the system serves, one for each service and kind of path, each
sent through Envoy with headers drawn at random from what HTTP allows: names of any token characters (upper case
and `!#$%&'*+^`|~` included), values of visible ASCII, tabs and bytes past ASCII, and gRPC's own names (grpc-timeout,
grpc-encoding, grpc-status, *-bin) with values gRPC may not read. No answer may be a 5xx: before the gateway's
request checks (gateway/request_checks.lua), a name with "!" or a *-bin value that is no base64 was a 500 on every
route. Left out: the names that frame the request or steer Envoy itself (content-length, host, x-envoy-*), and
grpc-timeout values that are valid and short, whose 504 is what they ask for."""
import collections
import random
import string

import httpx

NAME_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7f)) + "\t" + "éü€☃\u00ff"
GRPC_NAMES = ["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status", "grpc-message",
              "grpc-trace-bin", "x-trace-bin", "te", "content-type", "accept", "user-agent", "x-textgen-adapter"]
NEVER = ("content-length", "transfer-encoding", "host", "connection", "upgrade", "expect", "keep-alive",
         "authorization", "proxy-connection")
CHAT = {"model": "base", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
REQUESTS = [
    ("GET", "/v1/models", None), ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/chat/completions", {**CHAT, "stream": True}),
    ("POST", "/v1/completions", {"model": "base", "prompt": "The", "max_tokens": 2}),
    ("POST", "/generate", {"start_word": "the", "length": 3}),
    ("POST", "/generate_with_rnn", {"start_word": "the", "length": 3}),
    ("POST", "/generate_with_llm", {"question": "Why?", "context": "Because.", "max_new_tokens": 2}),
    ("POST", "/tokenize", {"prompt": "hi"}), ("GET", "/llm/status", None), ("GET", "/llm/jobs", None),
    ("GET", "/llm/adapters", None), ("GET", "/v1/files", None), ("GET", "/v1/fine_tuning/jobs", None),
]


def _text(rng: random.Random, chars: str, most: int) -> str:
    return "".join(rng.choice(chars) for _ in range(rng.randint(1, most)))


def _value(rng: random.Random, name: str) -> str:
    value = _text(rng, VALUE_CHARS, 40).strip()  # HTTP trims a value's outer whitespace
    if name == "grpc-timeout" and value[:-1].isdigit() and value[-1:] in "HMSmun":
        return value + "x"  # valid and perhaps short: its 504 would be the caller's own deadline
    return value or "x"


def headers(rng: random.Random) -> dict[str, str]:
    """One to four headers: a random name, one of gRPC's and the like, or a random name ending in -bin."""
    drawn = {}
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        name = (rng.choice(GRPC_NAMES) if kind < 0.4 else _text(rng, NAME_CHARS, 12) + ("-bin" if kind < 0.6 else ""))
        if name.lower() not in NEVER and not name.lower().startswith("x-envoy"):
            drawn[name] = _value(rng, name.lower())
    return drawn


def fuzz_headers(url: str, token: str, cases: int, seed: int) -> tuple[collections.Counter, list[str]]:
    """`cases` requests with random headers: (cases per status, the 5xx answers)."""
    rng, counts, bad = random.Random(seed), collections.Counter(), []
    with httpx.Client(base_url=url, timeout=60) as client:
        for case in range(cases):
            method, path, body = REQUESTS[case % len(REQUESTS)]
            sent = headers(rng)
            try:
                response = client.request(method, path, json=body, headers={
                    **{name: value.encode() for name, value in sent.items()}, "authorization": f"Bearer {token}"})
            except httpx.LocalProtocolError:  # a header the client itself will not send
                continue
            counts[response.status_code] += 1
            if response.status_code >= 500:
                bad.append(f"{method} {path} {sent!r} -> {response.status_code} {response.text[:200]!r}")
    return counts, bad
