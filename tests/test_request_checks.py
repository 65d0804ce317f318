"""What the gateway checks of a REST request before transcoding it (gateway/request_checks.lua), through real Envoy in
front of the llm: a header gRPC metadata cannot carry is dropped instead of failing the call, a grpc-timeout gRPC
cannot read is refused, and on OpenAI's JSON paths a field the API does not have is refused as OpenAI refuses one.
Beside them, the fields accepted without effect and vLLM's sampling extras, which do reach the engine."""
import httpx
import openai
import pytest

from tests.openai_service import HELLO, client, gateway, llm, metrics_port, models_dir  # noqa: F401

CHAT = {"model": "base", "messages": HELLO, "max_tokens": 3, "temperature": 0}
QA = {"question": "Why is the sea salty?", "context": "Rivers carry salt to the sea.", "max_new_tokens": 3}
# Each fails the call in the services' gRPC library when forwarded as it came (it answered 500 before the checks).
UNCARRIABLE = [("x-custom!", "x"), ("x-trace-bin", "Aq"), ("grpc-encoding", "foo")]


@pytest.mark.parametrize("name, value", UNCARRIABLE)
def test_a_header_grpc_cannot_carry_is_dropped_and_the_call_answered(gateway, name, value):
    chat = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers={name: value}, timeout=60)
    assert chat.status_code == 200 and chat.json()["usage"]["completion_tokens"] == 3
    native = httpx.post(f"{gateway.url}/generate_with_llm", json=QA, headers={name: value}, timeout=60)
    assert native.status_code == 200, native.text


def test_a_grpc_timeout_grpc_cannot_read_is_refused_and_a_readable_one_still_holds(gateway):
    words = ("the grpc-timeout header must be a positive whole number of at most 8 digits and a unit, H, M, S, m, u "
             "or n (200m is 200 milliseconds)")
    for value in ("abc", "0m", "123456789S", "5"):
        chat = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"grpc-timeout": value},
                          timeout=30)
        assert chat.status_code == 400 and chat.json() == {"error": {
            "message": words, "type": "invalid_request_error", "param": None, "code": None}}, value
        native = httpx.post(f"{gateway.url}/generate_with_llm", json=QA, headers={"grpc-timeout": value}, timeout=30)
        assert native.status_code == 400 and native.json() == {"code": 3, "message": words}, value
    late = httpx.post(f"{gateway.url}/generate_with_llm", json={**QA, "max_new_tokens": 200},
                      headers={"grpc-timeout": "1u"}, timeout=30)
    assert late.status_code == 504


def test_an_unknown_field_is_refused_with_openais_words(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="base", messages=HELLO, max_tokens=3, extra_body={"bogus_field": 1})
    assert refused.value.body == {"message": "Unrecognized request argument supplied: bogus_field",
                                  "type": "invalid_request_error", "param": None, "code": None}
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: echo"):
        client.completions.create(model="base", prompt="The sea", max_tokens=3, echo=True)


def test_only_top_level_fields_count_and_every_unknown_one_is_named(gateway):
    # Braces, commas and quotes inside a string, and keys of nested objects, are not top-level fields.
    tricky = {**CHAT, "messages": [{"role": "user", "content": '"}, "hidden": 1, {"'}], "functions": [{"x": 1}],
              "logit_bias": {"50256": -100}}
    refused = httpx.post(f"{gateway.url}/v1/chat/completions", json=tricky, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Unrecognized request arguments supplied: functions, logit_bias"
    many = httpx.post(f"{gateway.url}/v1/completions", json={"model": "base", **{f"x{i}": i for i in range(7)}},
                      timeout=30)
    assert many.json()["error"]["message"] == "Unrecognized request arguments supplied: x0, x1, x2, x3, x4 and 2 more"
    # The trainer's path is checked too, before it is routed (no trainer runs here).
    job = httpx.post(f"{gateway.url}/v1/fine_tuning/jobs", json={"model": "base", "training_file": "file-1",
                                                                "integrations": []}, timeout=30)
    assert job.status_code == 400
    assert job.json()["error"]["message"] == "Unrecognized request argument supplied: integrations"


def test_json_names_and_the_fields_accepted_without_effect_are_taken(gateway):
    camel = {"model": "base", "messages": HELLO, "maxTokens": 2, "temperature": 0}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=camel, timeout=60).json()["usage"][
        "completion_tokens"] == 2
    ignored = {**CHAT, "user": "u-1", "metadata": {"team": "a"}, "service_tier": "auto", "store": False}
    plain = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=60).json()
    answered = httpx.post(f"{gateway.url}/v1/chat/completions", json=ignored, timeout=60).json()
    assert answered["choices"][0]["message"] == plain["choices"][0]["message"]


def test_vllms_sampling_extras_reach_the_engine(client):
    greedy = client.chat.completions.create(model="base", messages=HELLO, max_tokens=6, temperature=0)
    for seed in range(3):
        top_one = client.chat.completions.create(model="base", messages=HELLO, max_tokens=6, temperature=1.5,
                                                 seed=seed, extra_body={"top_k": 1})
        assert top_one.choices[0].message.content == greedy.choices[0].message.content
    sure = client.chat.completions.create(model="base", messages=HELLO, max_tokens=6, temperature=1.5, seed=9,
                                          extra_body={"min_p": 1.0, "repetition_penalty": 1.0})
    assert sure.choices[0].message.content == greedy.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="base", prompt="The sea", max_tokens=3,
                                  extra_body={"repetition_penalty": 0, "top_k": -2})
    assert "repetition_penalty must be between 0.01 and 10 (got 0.0)" in refused.value.message
    assert "top_k must be between -1 and 1000000 (got -2)" in refused.value.message
