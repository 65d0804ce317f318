"""REST fuzzing through Envoy: schemathesis generates requests for every operation of the OpenAPI document Envoy
serves, against the whole system on loopback (suites/README.md); then once more on the OpenAI paths and the
tokenizer's, with bodies held to the values that reach the engine (suites/openai_reaching.py); then the headers,
random names and values HTTP allows on requests the system serves (suites/header_fuzzing.py).

    python suites/fuzz_rest.py            # full: at least 1000 cases, and 1000 of headers
    python suites/fuzz_rest.py --quick    # CI: at least 200 cases, and 200 of headers
    python suites/fuzz_rest.py --quick --url http://127.0.0.1:8080 --token "$API_KEY"
                                          # a system already running (compose: make compose-check)

Fails (exit code 1) on any 5xx, any response that breaks the documented schema or content type, and any 4xx
whose body is not a google.rpc.Status (on the OpenAI paths, /v1/..., OpenAI's error body). Prints the cases tried
per status code.
"""
import argparse
import collections
import json
import pathlib
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

import openai_reaching
from header_fuzzing import fuzz_headers
from devtools.processes import start_system

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
STREAMS = "/stream$|/events$"
OPENAI = "^/v1/(chat/)?completions$|^/(de)?tokenize$"
PHASES = "examples,coverage,fuzzing"
# Streams answer newline-delimited JSON as application/json (what Envoy sends): one JSON document per line, which a
# whole-body JSON check cannot read. They get every check but the body's. The OpenAI paths run once more with
# bodies that reach the engine (suites/openai_reaching.py), without the coverage phase: on that document
# schemathesis 4.32's coverage phase fails on /v1/completions itself ("Inconsistent results", a SystemError from
# Python's ast deep in hypothesis), now and then.
# Each run: its name, checks, the operations and phases, and the examples per operation (times the base number).
RUNS = [("calls", CHECKS, ["--exclude-path-regex", STREAMS, "--phases", PHASES], 1),
        ("streams", "not_a_server_error,status_code_conformance", ["--include-path-regex", STREAMS, "--phases",
                                                                   PHASES], 1),
        ("openai", CHECKS, ["--include-path-regex", OPENAI, "--mode", "positive", "--phases", "fuzzing"], 4)]


def is_error_body(path: str, body: str) -> bool:
    """A google.rpc.Status, or on the OpenAI paths OpenAI's {"error": {"message": ...}}."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    if path.startswith("/v1/"):
        parsed = parsed.get("error") if isinstance(parsed, dict) else None
        return isinstance(parsed, dict) and isinstance(parsed.get("message"), str)
    return isinstance(parsed, dict) and isinstance(parsed.get("code"), int) and isinstance(parsed.get("message"), str)


def statuses_from_har(path: pathlib.Path) -> tuple[collections.Counter, list[str]]:
    """Every response schemathesis got: a count per HTTP status, and the 4xx/5xx bodies that are not an error body."""
    counts, bad = collections.Counter(), []
    for entry in json.loads(path.read_text())["log"]["entries"]:
        status, body = entry["response"]["status"], entry["response"]["content"].get("text", "")
        counts[status] += 1
        if status >= 400 and not is_error_body(urllib.parse.urlsplit(entry["request"]["url"]).path, body):
            bad.append(f"{entry['request']['method']} {entry['request']['url']} -> {status} {body[:200]!r}")
    return counts, bad


def fuzz(url: str, token: str, quick: bool, seed: int, tmp: pathlib.Path):
    """schemathesis's runs against the gateway at `url`, then the headers': (the processes, schemathesis's cases per
    status, bad error bodies and 5xx answers to headers, the header cases per status)."""
    per_operation = 16 if quick else 80  # x 23 operations, plus the examples and coverage phases
    runs, counts, bad = [], collections.Counter(), []
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=30) as served:
        reaching = tmp / "reaching.json"
        reaching.write_text(json.dumps(openai_reaching.reaching_document(json.load(served))))
    for name, checks, selection, times in RUNS:
        har = tmp / f"{name}.har"
        document = [str(reaching), "--url", url] if name == "openai" else [f"{url}/openapi.json"]
        runs.append(subprocess.run(
            [str(pathlib.Path(sys.executable).parent / "schemathesis"), "run",
             *document, "--checks", checks, *selection,
             "--max-examples", str(per_operation * times),
             "--seed", str(seed), "--workers", "2", "--header", f"Authorization: Bearer {token}",
             "--request-timeout", "60", "--generation-database", "none", "--report", "har",
             "--report-har-path", str(har), "--no-color"],
            capture_output=True, text=True, timeout=1800))
        run_counts, run_bad = statuses_from_har(har)
        counts += run_counts
        bad += run_bad
    header_counts, header_bad = fuzz_headers(url, token, 200 if quick else 1000, seed)
    return runs, counts, bad + header_bad, header_counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI size: at least 200 cases")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="the gateway of a system already running (default: start one on loopback)")
    parser.add_argument("--token", default="", help="an API key with every scope (with --url)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-rest-") as tmp:
        if args.url:
            runs, counts, bad, header_counts = fuzz(args.url, args.token, args.quick, args.seed, pathlib.Path(tmp))
        else:
            with start_system(pathlib.Path(tmp) / "models", TRAINER_MAX_QUEUED="1") as system:
                runs, counts, bad, header_counts = fuzz(system.gateway.url, system.token, args.quick, args.seed,
                                                        pathlib.Path(tmp))
    print("\n".join(run.stdout for run in runs)[-3000:])
    total = sum(counts.values())
    print(f"cases: {total}; by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print("header cases: " + ", ".join(f"{s}: {n}" for s, n in sorted(header_counts.items())))
    print(f"4xx/5xx bodies that are not an error body, and 5xx answers to headers: {len(bad)}")
    for line in bad[:20]:
        print("  " + line)
    enough = total >= (200 if args.quick else 1000)
    if not enough:
        print(f"too few cases: {total}")
    passed = all(run.returncode == 0 for run in runs)
    return 0 if passed and not bad and enough and not any(s >= 500 for s in counts + header_counts) else 1


if __name__ == "__main__":
    sys.exit(main())
