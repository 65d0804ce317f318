"""Latency the OpenAI-compatible path adds over the native REST path, for the same generation through the same Envoy.

    python bench/bench_openai.py --calls 2000

Starts the llm service on the tiny random GPT-2 (no batching window: each request runs at once) and Envoy on loopback,
as the tests do. Both paths then generate the same single token from the same prompt tokens: the native text mode
(`/generate_with_llm`, start_word "The": the prompt is the end-of-text token and "That is a great question. The")
and `/v1/completions` (that prompt text, max_tokens 1), each unary and streamed, sequentially on one kept-alive
HTTP/1.1 connection, alternating rounds so that machine noise hits both alike. Prints p50/p99 and the milliseconds the
OpenAI path adds: its routing on `stream`, its own transcoder configuration, the Lua filter and its servicer.
"""
import argparse
import http.client
import json
import pathlib
import tempfile

from bench_gateway import percentile, timed
from devtools.models import RANDOM_GPT2, random_models_dir
from devtools.processes import start_gateway, start_service
from services.common.prompts import PREFIX

NATIVE = {"start_word": "The", "length": 1, "adapter": "base"}
OPENAI = {"model": "base", "prompt": f"{PREFIX} The", "max_tokens": 1, "temperature": 0}


def poster(connection: http.client.HTTPConnection, path: str, request: dict):
    body, headers = json.dumps(request), {"content-type": "application/json"}

    def post() -> bytes:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(response.read())
        return response.read()

    return post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls each way, unary and streamed alike")
    args = parser.parse_args()
    models = random_models_dir(pathlib.Path(tempfile.mkdtemp(prefix="textgen-bench-openai-")))
    env = {"MODELS_DIR": str(models), "LLM_BASE_MODEL": str(models / RANDOM_GPT2), "LLM_TORCH_THREADS": "1",
           "LLM_BATCH_WINDOW_MS": "0"}
    with start_service("services.llm", env, "LLM_PORT") as llm, start_gateway(llm=llm.address) as gateway:
        connection = http.client.HTTPConnection("127.0.0.1", gateway.port)
        pairs = {"unary": (poster(connection, "/generate_with_llm", NATIVE),
                           poster(connection, "/v1/completions", OPENAI)),
                 "streamed": (poster(connection, "/generate_with_llm/stream", NATIVE),
                              poster(connection, "/v1/completions", {**OPENAI, "stream": True}))}
        native, openai = pairs["unary"]
        assert json.loads(native())["generated_tokens"] == json.loads(openai())["usage"]["completion_tokens"] == 1
        samples = {name: ([], []) for name in pairs}
        rounds = 10
        for _ in range(rounds):
            for name, (native, openai) in pairs.items():
                samples[name][0].extend(timed(native, args.calls // rounds))
                samples[name][1].extend(timed(openai, args.calls // rounds))
    print(f"{args.calls} sequential one-token generations each way on loopback, through Envoy")
    print(f"{'':28}{'p50 ms':>10}{'p99 ms':>10}")
    for name, (native, openai) in samples.items():
        for path, timings in ((f"native {name}", native), (f"OpenAI {name}", openai)):
            print(f"{path:28}{percentile(timings, 50):10.3f}{percentile(timings, 99):10.3f}")
    for name, (native, openai) in samples.items():
        for q in (50, 99):
            print(f"{name} p{q}: OpenAI/native = {percentile(openai, q) / percentile(native, q):.2f}x, "
                  f"added {percentile(openai, q) - percentile(native, q):.3f} ms")


if __name__ == "__main__":
    main()
