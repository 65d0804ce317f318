"""The gateway's rate limits as rendered: the llm routes, the bigram and LSTM routes and the training calls that start
or cancel work take a token from their bucket, every other route passes untouched, and the buckets are the documented
defaults."""
import re

from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from gateway import openai_routes
from gateway.rate_limits import DEFAULT_BUCKETS
from tests.rendered_envoy import manager
from textgen.paths import ROOT


def rate_limit_filters(config: dict) -> dict[str, local_rate_limit_pb2.LocalRateLimit]:
    """bucket name -> its filter's configuration."""
    found = {}
    for http_filter in manager(config).http_filters:
        unpacked = local_rate_limit_pb2.LocalRateLimit()
        if http_filter.typed_config.Unpack(unpacked):
            found[http_filter.name.removeprefix("rate_limit.")] = unpacked
    return found


def test_the_llm_routes_and_the_training_calls_that_start_or_cancel_work_take_tokens(rendered):
    routes = manager(rendered["local"]["dict"]).route_config.virtual_hosts[0].routes
    metadata = {r.match.path: r.metadata.filter_metadata for r in routes if r.HasField("route")}
    buckets = {path: m["textgen"]["rate_limit"] if "rate_limit" in m["textgen"] else None for path, m in metadata.items()}
    limited = {path: bucket for path, bucket in buckets.items() if bucket}
    served_by_llm = ("/textgen.v1.LlmService/", "/textgen.v1.TokenizerService/",
                     *(f"/{service}/" for service in openai_routes.SERVICES))
    assert {path for path, bucket in limited.items() if bucket == "llm"} == {
        path for path in buckets if path.startswith(served_by_llm)}  # the OpenAI paths too
    assert {path for path, bucket in limited.items() if bucket == "small_models"} == {
        "/textgen.v1.BigramService/Generate", "/textgen.v1.RnnService/Generate"}
    assert {path for path, bucket in limited.items() if bucket == "train"} == {
        "/textgen.v1.TrainerService/TrainSft", "/textgen.v1.TrainerService/TrainRl",
        "/textgen.v1.TrainerService/CancelJob", "/textgen.v1.AdapterService/ServeAdapterVersion",
        "/textgen.v1.AdapterService/DeleteAdapterVersion", "/textgen.v1.AdapterService/DeleteAdapter",
        "/textgen.v1.FileService/CreateFile", "/textgen.v1.FileService/DeleteFile",
        "/textgen.v1.FineTuningService/CreateFineTuningJob", "/textgen.v1.FineTuningService/CancelFineTuningJob",
        "/textgen.v1.FineTuningService/DeleteModel"}
    assert "/textgen.v1.OpenAiService/CreateChatCompletion" in limited
    assert set(limited.values()) == {"llm", "small_models", "train"}
    assert "/textgen.v1.TrainerService/WatchJob" in buckets
    for name, rate_limit in rate_limit_filters(rendered["local"]["dict"]).items():
        assert rate_limit.filter_enabled.default_value.numerator == 100
        assert rate_limit.filter_enforced.default_value.numerator == 100
        assert rate_limit.rate_limited_as_resource_exhausted and not rate_limit.HasField("token_bucket")
        assert [(e.key, e.value) for e in rate_limit.descriptors[0].entries] == [("rate_limit", name)]
        assert [h.header.key for h in rate_limit.response_headers_to_add] == ["retry-after"]


def test_the_rendered_rate_limits_are_the_documented_defaults(rendered):
    documented = re.findall(r"^\| `GATEWAY_(\w+)_RATE`, `GATEWAY_\1_BURST` \| ([\d.]+), (\d+) \|",
                            (ROOT / "docs" / "usage.md").read_text(), flags=re.MULTILINE)
    assert {name.lower(): (float(rate), int(burst)) for name, rate, burst in documented} == {
        name: (bucket.rate, bucket.burst) for name, bucket in DEFAULT_BUCKETS.items()}
    for target in ("local", "compose"):
        for name, rate_limit in rate_limit_filters(rendered[target]["dict"]).items():
            bucket = rate_limit.descriptors[0].token_bucket
            rate = bucket.tokens_per_fill.value / bucket.fill_interval.ToTimedelta().total_seconds()
            assert (rate, bucket.max_tokens) == (DEFAULT_BUCKETS[name].rate, DEFAULT_BUCKETS[name].burst)
            assert rate_limit.response_headers_to_add[0].header.value == "1"
