"""What two of the OpenAI features cost on the embedded SmolLM2, through the llm service's OpenAiService over gRPC
(no gateway: the engine's cost is the point). Prints two ratios, issue 33's targets beside them:

- n=4: one chat request for 4 sampled choices, against the same 4 choices asked as 4 separate requests (seeds s..s+3,
  so every text is the same) one after another, and all at once. Target: n=4 takes <= 0.5x the time of 4 separate.
- JSON: greedy answers held to a JSON Schema (response_format json_schema) against free greedy answers to the same
  prompt, in generated tokens per second, each request alone. Target: constrained >= 0.8x free.

Rounds alternate the variants, so that machine noise hits them alike; each figure is the median over rounds. Run it on
a quiet machine, never beside training or another benchmark.

    python bench/bench_openai_features.py                  # 5 rounds
    python bench/bench_openai_features.py --rounds 9 --max-tokens 64
"""
import argparse
import concurrent.futures
import pathlib
import statistics
import tempfile
import time

import grpc
from google.protobuf import json_format

from devtools.processes import start_service
from services.common import embedded_model
from textgen.v1 import openai_pb2, openai_pb2_grpc

PASSAGE = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
           "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, under "
           "their leader Rollo, agreed to swear fealty to King Charles III of West Francia. Through generations of "
           "assimilation and mixing with the native Frankish and Roman-Gaulish populations, their descendants would "
           "gradually merge with the Carolingian-based cultures of West Francia. ")
STORY = [{"role": "user", "content": PASSAGE + "Write a short story about the Normans."}]
PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 60}, "century": {"type": "integer"},
    "homeland": {"type": "string", "maxLength": 60},
    "facts": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 3}},
    "required": ["name", "century", "homeland", "facts"], "additionalProperties": False}
DESCRIBE = [{"role": "user", "content": PASSAGE + "Describe Rollo as JSON: name, century, homeland and three facts."}]


def chat(stub, **fields) -> openai_pb2.ChatCompletion:
    return stub.CreateChatCompletion(json_format.ParseDict({"model": "base", **fields},
                                                           openai_pb2.ChatCompletionRequest()))


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def choices_round(stub, pool, seed: int, max_tokens: int) -> dict[str, float]:
    asked = dict(messages=STORY, temperature=1.0, max_tokens=max_tokens)
    together_s, together = timed(lambda: chat(stub, **asked, n=4, seed=seed))
    sequential_s, alone = timed(lambda: [chat(stub, **asked, seed=seed + i) for i in range(4)])
    concurrent_s, _ = timed(lambda: list(pool.map(lambda i: chat(stub, **asked, seed=seed + i), range(4))))
    texts = [c.message.content for c in together.choices]
    if texts != [a.choices[0].message.content for a in alone]:
        raise SystemExit("n=4's choices differ from the separate requests with seeds s..s+3")
    return {"n4": together_s, "sequential": sequential_s, "concurrent": concurrent_s}


def json_round(stub, max_tokens: int) -> dict[str, float]:
    rates = {}
    for name, extra in (("free", {}), ("constrained", {"response_format": {
            "type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}})):
        seconds, answer = timed(lambda: chat(stub, messages=DESCRIBE, temperature=0, max_tokens=max_tokens, **extra))
        rates[name] = answer.usage.completion_tokens / seconds
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as models_dir:
        embedded_model.ensure(pathlib.Path(models_dir))
        env = {"MODELS_DIR": models_dir, "LLM_BASE_MODEL": "embedded"}
        with start_service("services.llm", env, "LLM_PORT") as llm, grpc.insecure_channel(llm.address) as channel, \
                concurrent.futures.ThreadPoolExecutor(4) as pool:
            stub = openai_pb2_grpc.OpenAiServiceStub(channel)
            chat(stub, messages=STORY, max_tokens=4)  # warm up
            rounds = [(choices_round(stub, pool, 100 + r, args.max_tokens), json_round(stub, args.max_tokens))
                      for r in range(args.rounds)]
    median = {key: statistics.median(r[part][key] for r in rounds)
              for part, keys in ((0, ("n4", "sequential", "concurrent")), (1, ("free", "constrained")))
              for key in keys}
    print(f"n=4, {args.max_tokens} tokens a choice, median of {args.rounds} rounds:")
    print(f"  one request, n=4        {median['n4']:6.2f} s")
    print(f"  4 requests in a row     {median['sequential']:6.2f} s   n=4 takes {median['n4'] / median['sequential']:.2f}x"
          " (target <= 0.5x)")
    print(f"  4 requests at once      {median['concurrent']:6.2f} s   n=4 takes {median['n4'] / median['concurrent']:.2f}x")
    print("JSON held to a schema, greedy, each request alone:")
    print(f"  free                    {median['free']:6.1f} tokens/s")
    print(f"  constrained             {median['constrained']:6.1f} tokens/s   "
          f"{median['constrained'] / median['free']:.2f}x (target >= 0.8x)")


if __name__ == "__main__":
    main()
