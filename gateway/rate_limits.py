"""Rate limits at the edge: Envoy's local rate limit, one token bucket per class of routes, sized when the
configuration is rendered from GATEWAY_<CLASS>_RATE (requests per second, sustained; a decimal such as 0.1 is one
every 10 s) and GATEWAY_<CLASS>_BURST (requests admitted at once after a quiet spell). Which REST methods take a
token from which bucket is gateway/backends.py's table; a request over the limit gets 429 with a retry-after header.

The buckets are each Envoy process's own (local rate limiting: no shared counter), so two Envoy replicas admit twice
the rate. The defaults are a backstop against a flood, sized so that the load suite and the benchmarks never meet
them; an operator sets the real policy.
"""
import dataclasses
import math
from collections.abc import Mapping

METADATA_NAMESPACE = "textgen"  # a route's filter_metadata namespace that names its bucket
METADATA_KEY = "rate_limit"
MIN_FILL_INTERVAL_MS = 50  # Envoy refuses a token bucket refilled more often


@dataclasses.dataclass(frozen=True)
class TokenBucket:
    rate: float  # tokens added per second: the sustained requests/s
    burst: int  # the bucket's size

    @property
    def tokens_per_fill(self) -> int:
        # Whole tokens at each refill, never more than the bucket holds (Envoy would drop the rest).
        return max(1, min(math.floor(self.rate), self.burst))

    @property
    def fill_interval_ms(self) -> int:
        return round(1000 * self.tokens_per_fill / self.rate)

    @property
    def retry_after_seconds(self) -> int:
        """When the next token is due at the latest, in the whole seconds a retry-after header takes."""
        return max(1, math.ceil(self.fill_interval_ms / 1000))

    def envoy(self) -> dict:
        return {"max_tokens": self.burst, "tokens_per_fill": self.tokens_per_fill,
                "fill_interval": f"{self.fill_interval_ms / 1000}s"}


# small_models (bigram and LSTM) is sized above what bench/bench_gateway.py sends: sequential bigram calls of about
# 1.2 ms each through one Envoy (docs/measured.md), under 1000 a second.
DEFAULT_BUCKETS = {"llm": TokenBucket(rate=500, burst=1000), "small_models": TokenBucket(rate=2000, burst=4000),
                   "train": TokenBucket(rate=20, burst=200)}


def rate_variable(name: str) -> str:
    return f"GATEWAY_{name.upper()}_RATE"


def burst_variable(name: str) -> str:
    return f"GATEWAY_{name.upper()}_BURST"


def _number(environ: Mapping[str, str], variable: str, default: float, whole: bool) -> float:
    raw = environ.get(variable) or str(default)
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = 0
    if not value > 0 or math.isinf(value):
        kind = "a whole number" if whole else "a number"
        raise SystemExit(f"{variable}={raw!r} is not a valid rate limit ({kind} above 0)")
    return value


def buckets_from(environ: Mapping[str, str]) -> dict[str, TokenBucket]:
    """Every bucket, each setting from the environment (unset or empty: the default)."""
    buckets = {}
    for name, default in DEFAULT_BUCKETS.items():
        bucket = TokenBucket(rate=_number(environ, rate_variable(name), default.rate, whole=False),
                             burst=int(_number(environ, burst_variable(name), default.burst, whole=True)))
        _check_refill(name, bucket)
        buckets[name] = bucket
    return buckets


def _check_refill(name: str, bucket: TokenBucket) -> None:
    if bucket.fill_interval_ms < MIN_FILL_INTERVAL_MS:
        raise SystemExit(f"{burst_variable(name)}={bucket.burst} is too small for {rate_variable(name)}="
                         f"{bucket.rate}: Envoy refills a bucket at most every {MIN_FILL_INTERVAL_MS} ms, so the "
                         f"burst must be at least rate/{1000 // MIN_FILL_INTERVAL_MS}")


def route_metadata(name: str | None) -> dict:
    """What marks a route as taking its tokens from bucket `name` (None: from none)."""
    return {"filter_metadata": {METADATA_NAMESPACE: {METADATA_KEY: name} if name else {}}}


def rate_limit_filter(name: str, bucket: TokenBucket) -> dict:
    """The HTTP filter of bucket `name`: one per bucket, so that every route marked with it shares its tokens and
    its 429 carries its own retry-after. Routes not marked pass through untouched."""
    return {"name": f"rate_limit.{name}", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": f"rate_limit_{name}",
        "filter_enabled": {"default_value": {"numerator": 100}, "runtime_key": f"rate_limit_{name}.enabled"},
        "filter_enforced": {"default_value": {"numerator": 100}, "runtime_key": f"rate_limit_{name}.enforced"},
        "rate_limits": [{"actions": [{"metadata": {
            "descriptor_key": METADATA_KEY, "source": "ROUTE_ENTRY", "skip_if_absent": True,
            "metadata_key": {"key": METADATA_NAMESPACE, "path": [{"key": METADATA_KEY}]}}}]}],
        "descriptors": [{"entries": [{"key": METADATA_KEY, "value": name}], "token_bucket": bucket.envoy()}],
        # Only the marked routes' descriptor has a bucket: the others are never counted.
        "always_consume_default_token_bucket": False,
        "rate_limited_as_resource_exhausted": True,  # a raw gRPC caller gets RESOURCE_EXHAUSTED, not UNAVAILABLE
        "response_headers_to_add": [{"header": {"key": "retry-after", "value": str(bucket.retry_after_seconds)},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    }}
