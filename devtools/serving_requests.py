"""Sending bench/bench_serving.py's requests: one streamed chat completion timed as `vllm bench serve` times it
(TTFT, every gap between streamed pieces, end to end), and a level of them, closed loop or open loop."""
import asyncio
import dataclasses
import json
import math
import random
import time

import httpx

from devtools.serving_workloads import Prompt


@dataclasses.dataclass
class Result:
    ok: bool
    ttft: float = math.nan
    e2e: float = math.nan
    itl: list[float] = dataclasses.field(default_factory=list)
    output_tokens: int = 0
    error: str = ""

    @property
    def tpot(self) -> float:
        return (self.e2e - self.ttft) / (self.output_tokens - 1) if self.output_tokens > 1 else math.nan


@dataclasses.dataclass(frozen=True)
class Target:
    url: str  # the server's root: .../v1/chat/completions is appended
    model: str  # what `model` says for the base
    max_tokens: int = 48
    lora_ids: dict[str, int] = dataclasses.field(default_factory=dict)  # llama-server's per-request adapters
    api_key: str = ""

    def body(self, prompt: Prompt) -> dict:
        body = {"messages": [{"role": "user", "content": prompt.text}], "max_tokens": self.max_tokens,
                "temperature": 0, "stream": True, "stream_options": {"include_usage": True}, "model": self.model}
        if prompt.adapter != "base":
            if self.lora_ids:
                body["lora"] = [{"id": self.lora_ids[prompt.adapter], "scale": 1.0}]
            else:
                body["model"] = prompt.adapter
        return body


async def send(client: httpx.AsyncClient, target: Target, prompt: Prompt) -> Result:
    started = time.perf_counter()
    result, last, pieces = Result(ok=False), None, 0
    try:
        async with client.stream("POST", f"{target.url}/v1/chat/completions", json=target.body(prompt)) as response:
            if response.status_code != 200:
                return Result(ok=False, error=f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("error"):
                    return Result(ok=False, error=str(chunk["error"])[:200])
                if chunk.get("usage"):
                    result.output_tokens = chunk["usage"].get("completion_tokens", 0)
                deltas = [choice.get("delta") or {} for choice in chunk.get("choices") or []]
                text = "".join(delta.get("content") or "" for delta in deltas)
                if not text:
                    continue
                now = time.perf_counter()
                if last is None:
                    result.ttft = now - started
                else:
                    result.itl.append(now - last)
                last, pieces = now, pieces + 1
    except httpx.HTTPError as error:
        return Result(ok=False, error=f"{type(error).__name__}: {error}")
    result.e2e = time.perf_counter() - started
    result.output_tokens = result.output_tokens or pieces
    result.ok = last is not None
    result.error = "" if result.ok else "no text streamed"
    return result



def gaps(rate: float, count: int, burstiness: float, rng: random.Random) -> list[float]:
    """Times between arrivals: exponential (Poisson arrivals) at burstiness 1, gamma with that shape otherwise (the
    same mean rate; below 1 arrivals come in bursts), as vllm bench serve draws them."""
    return [rng.gammavariate(burstiness, 1 / (rate * burstiness)) for _ in range(count)]


async def run_level(target: Target, prompts: list[Prompt], concurrency: int | None = None, rate: float | None = None,
                    burstiness: float = 1.0, seed: int = 0) -> tuple[list[Result], float]:
    """Every prompt sent, closed loop at `concurrency` or open loop at `rate`; the results and the seconds taken."""
    # A fresh connection per request: llama-server closes a kept-alive one after a few requests, and a request sent
    # on one it is closing fails; loopback connections cost well under a millisecond.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    headers = {"authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits, headers=headers) as client:
        results: list[Result | None] = [None] * len(prompts)
        started = time.perf_counter()
        if concurrency:
            queue = iter(range(len(prompts)))

            async def client_loop() -> None:
                for index in queue:
                    results[index] = await send(client, target, prompts[index])

            await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        else:
            tasks, at = [], 0.0
            for index, gap in enumerate(gaps(rate, len(prompts), burstiness, random.Random(seed))):
                at += gap
                await asyncio.sleep(max(0.0, started + at - time.perf_counter()))

                async def one(index: int = index) -> None:
                    results[index] = await send(client, target, prompts[index])

                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
        return results, time.perf_counter() - started
