"""Tool calls on the embedded model (SmolLM2-135M-Instruct), through the real gateway with the official `openai`
client, one client at a time, greedy:

    python bench/bench_tool_calls.py [--questions 30]      (make embedded-model first; a quiet machine)

1. `required` (one call each): the share of calls whose arguments validate against their function's schema
   (jsonschema), the share that called the function the question was written for, and tokens/s;
2. the same questions without tools (free answers): tokens/s, the yardstick for 1;
3. `auto`: the share answered with calls, and those calls' validity and choice of function.
Tokens/s end to end: completion tokens ÷ the requests' whole time, the longer prompt that tells of the tools
included (a stream shows a call's first piece only once its name is written, so a rate after the first piece would
flatter the calls). Prints the CPU's name and flags beside the figures.
"""
import argparse
import json
import statistics
import time

import jsonschema

from devtools.fine_tuning_system import cpu, embedded_system

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "The weather forecast of a city",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"},
                                          "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                                          "required": ["city", "days"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "convert_currency", "description": "Converts an amount of money",
                                      "parameters": {"type": "object", "properties": {
                                          "amount": {"type": "number"},
                                          "source": {"enum": ["USD", "EUR", "GBP", "JPY"]},
                                          "target": {"enum": ["USD", "EUR", "GBP", "JPY"]}},
                                          "required": ["amount", "source", "target"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "set_alarm", "description": "Sets an alarm at a time of day",
                                      "parameters": {"type": "object", "properties": {
                                          "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                                          "label": {"type": "string", "maxLength": 40}},
                                          "required": ["time"], "additionalProperties": False}}},
]
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
CITIES = ["Paris", "Tokyo", "Lima", "Cairo", "Oslo", "Denver", "Nairobi", "Hanoi", "Quebec", "Perth"]
QUESTIONS = (
    [(f"What will the weather be like in {city} over the next {1 + i % 5} days?", "get_weather")
     for i, city in enumerate(CITIES)]
    + [(f"How much is {amount} {a} in {b}?", "convert_currency") for amount, a, b in [
        (100, "USD", "EUR"), (250, "GBP", "JPY"), (12.5, "EUR", "USD"), (9000, "JPY", "GBP"), (75, "USD", "GBP"),
        (3, "EUR", "JPY"), (640, "GBP", "USD"), (18, "JPY", "EUR"), (1200, "USD", "JPY"), (55.5, "EUR", "GBP")]]
    + [(f"Wake me up at {hour:02d}:{minute:02d} {why}.", "set_alarm") for hour, minute, why in [
        (6, 30, "for my run"), (7, 0, "for work"), (5, 45, "to catch the train"), (8, 15, "on Saturday"),
        (22, 0, "to take my pills"), (13, 30, "for the meeting"), (6, 0, "tomorrow"), (9, 5, "for the call"),
        (17, 45, "to pick up the kids"), (4, 50, "for the flight")]])
MAX_TOKENS = 128


def streamed(client, messages: list[dict], **fields) -> dict:
    """One streamed answer: its text, its calls as (name, arguments), its time, token count and finish."""
    started, text, calls, tokens, finish = time.monotonic(), "", [], 0, None
    for chunk in client.chat.completions.create(model="base", messages=messages, temperature=0, stream=True,
                                                max_tokens=MAX_TOKENS, stream_options={"include_usage": True},
                                                **fields):
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            text += choice.delta.content or ""
            for piece in choice.delta.tool_calls or []:
                if piece.id:
                    calls.append([piece.function.name, ""])
                calls[-1][1] += piece.function.arguments or ""
    return {"text": text, "calls": calls, "tokens": tokens, "seconds": time.monotonic() - started, "finish": finish}


def valid(call: list[str]) -> bool:
    name, arguments = call
    try:
        jsonschema.validate(json.loads(arguments), SCHEMAS[name])
    except (ValueError, KeyError, jsonschema.ValidationError):
        return False
    return True


def rate(answers: list[dict]) -> float:
    """Tokens/s over all the answers, end to end."""
    return sum(a["tokens"] for a in answers) / sum(a["seconds"] for a in answers)


def share(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f}%)" if total else "0/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    args = parser.parse_args()
    questions = QUESTIONS[:args.questions]
    print(cpu())
    with embedded_system() as (client, _, _, _):
        runs = {}
        for name, fields in [("required", {"tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False}),
                             ("free", {}), ("auto", {"tools": TOOLS})]:
            runs[name] = [streamed(client, [{"role": "user", "content": q}], **fields) for q, _ in questions]
    required, free, auto = runs["required"], runs["free"], runs["auto"]
    calls = [(a["calls"], wanted) for a, (_, wanted) in zip(required, questions)]
    cut = [a for a in required if a["finish"] == "length"]  # its last call's pieces were sent, unfinished
    made = [call for a in required for call in (a["calls"][:-1] if a["finish"] == "length" else a["calls"])]
    print(f"required: {len(made)} finished calls in {len(required)} answers ({len(cut)} answers cut short by "
          f"max_tokens={MAX_TOKENS} inside a call); arguments valid: {share(sum(map(valid, made)), len(made))}; "
          f"the intended function: {share(sum(bool(c) and c[0][0] == wanted for c, wanted in calls), len(calls))}")
    for answer in cut:
        print("  cut short:", answer["calls"][-1][0], repr(answer["calls"][-1][1][:100]))
    for call in made:
        if not valid(call):
            print("  not valid:", call)
    print(f"tokens/s, end to end: required {rate(required):.1f}, free {rate(free):.1f}, "
          f"ratio {rate(required) / rate(free):.2f}")
    print(f"mean tokens: required {statistics.mean(a['tokens'] for a in required):.1f}, "
          f"free {statistics.mean(a['tokens'] for a in free):.1f}")
    called = [(a, wanted) for a, (_, wanted) in zip(auto, questions) if a["calls"]]
    auto_calls = [call for a, _ in called for call in a["calls"]]
    print(f"auto: answered with calls {share(len(called), len(auto))}; their arguments valid "
          f"{share(sum(map(valid, auto_calls)), len(auto_calls))}; the intended function "
          f"{share(sum(a['calls'][0][0] == wanted for a, wanted in called), len(called))}")
    print("auto, first text answer:", repr(next((a["text"][:160] for a in auto if not a["calls"]), None)))
    print("required, first call:", required[0]["calls"])


if __name__ == "__main__":
    main()
