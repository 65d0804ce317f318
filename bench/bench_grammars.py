"""JSON-schema grammar libraries side by side on the embedded SmolLM2's tokenizer: what choosing llguidance for
response_format (services/llm/constraints.py) rests on. For each library installed: building its token table, compiling
a schema, and the time per token of computing the mask of allowed tokens, applying it to a row of logits and moving
past the token, along a valid answer. Only llguidance is in the requirements; to compare xgrammar, install it
beside (`pip install --target /tmp/xgr --no-deps xgrammar==0.2.9 apache-tvm-ffi` and PYTHONPATH=/tmp/xgr).

    python bench/bench_grammars.py
"""
import json
import pathlib
import statistics
import tempfile
import time

import torch

from services.common import embedded_model

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                           "tags": {"type": "array", "items": {"type": "string"}}},
          "required": ["name", "age"]}
ANSWER = json.dumps({"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry", "engines"]}, separators=(",", ":"))


def timed(call):
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def with_llguidance(tokenizer, ids: list[int]) -> dict:
    import llguidance
    import llguidance.hf

    from services.llm.constraints import JsonGrammars
    from services.llm.engine.sampling import mask_refused
    table_s, _ = timed(lambda: llguidance.hf.from_tokenizer(tokenizer))
    grammars = JsonGrammars(tokenizer)
    compile_s, _ = timed(lambda: grammars.matcher(SCHEMA))
    logits = torch.zeros(len(tokenizer))

    def walk():
        matcher = grammars.matcher(SCHEMA)
        for token in ids:
            mask_refused(logits, matcher)
            matcher.accept(token)

    return {"table": table_s, "compile": compile_s, "per_token": [timed(walk)[0] / len(ids) for _ in range(5)]}


def with_xgrammar(tokenizer, ids: list[int]) -> dict:
    import xgrammar

    table_s, info = timed(lambda: xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer)))
    compiler = xgrammar.GrammarCompiler(info)
    compile_s, compiled = timed(lambda: compiler.compile_json_schema(json.dumps(SCHEMA)))
    bitmask, logits = xgrammar.allocate_token_bitmask(1, info.vocab_size), torch.zeros(1, len(tokenizer))

    def walk():
        matcher = xgrammar.GrammarMatcher(compiled)
        for token in ids:
            matcher.fill_next_token_bitmask(bitmask)
            xgrammar.apply_token_bitmask_inplace(logits, bitmask)
            matcher.accept_token(token)

    return {"table": table_s, "compile": compile_s, "per_token": [timed(walk)[0] / len(ids) for _ in range(5)]}


def main() -> None:
    from transformers import AutoTokenizer

    torch.set_num_threads(1)  # a row's mask is small: spread over threads it waits on them (on a busy CPU, ms)
    with tempfile.TemporaryDirectory() as models_dir:
        folder = embedded_model.ensure(pathlib.Path(models_dir))
        tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    print(f"schema answer of {len(ids)} tokens, vocabulary {len(tokenizer)}; per token: median (min-max) of 5 walks")
    for name, run in (("llguidance", with_llguidance), ("xgrammar", with_xgrammar)):
        try:
            figures = run(tokenizer, ids)
        except ImportError:
            print(f"{name:11} not installed")
            continue
        per_token = [seconds * 1e6 for seconds in figures["per_token"]]
        print(f"{name:11} token table {figures['table'] * 1000:5.0f} ms, schema {figures['compile'] * 1000:4.1f} ms, "
              f"mask + apply + accept {statistics.median(per_token):5.0f} us/token "
              f"({min(per_token):.0f}-{max(per_token):.0f})")


if __name__ == "__main__":
    main()
