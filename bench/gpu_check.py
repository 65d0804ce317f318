"""The llm service and the trainer on the machine's GPU (LLM_DEVICE / TRAINER_DEVICE = auto), against in-process
transformers on the same device and dtype, on the GPT-2-size model with random weights (as bench_llm.py).

    python bench/gpu_check.py            # where a GPU is (how long it takes: docs/operations.md)
    python bench/gpu_check.py --smoke    # anywhere (CI, on the CPU): the tiny model, a few tokens, seconds

Checks and reports:
  the service's greedy answers equal in-process `generate` on the same device (exit code 1 when not)
  single-request latency and 8-client throughput, service / in-process (as bench_llm.py's targets: <= 1.10, >= 0.85)
  8 clients, batching on / off
  in-process tokens/s at batch 1, 8 and 32
  an SFT step, LoRA / full fine-tuning (trl SFTTrainer as the trainer's jobs use it)
"""
import argparse
import concurrent.futures
import pathlib
import tempfile
import time

import grpc
import torch
from bench_llm import InProcess, request, timed  # noqa: I001  (a sibling script: python bench/gpu_check.py)
from textgen.v1 import llm_pb2_grpc

from devtools.models import build_gpt2_size_model, build_tiny_model
from devtools.processes import start_service
from services.common import devices
from services.common.prompts import PREFIX
from services.llm.endings import ANSWER_FORMAT


def clients(stub, count: int, new_tokens: int) -> float:
    """Tokens/s of `count` concurrent clients."""
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        tokens = sum(r.generated_tokens for r in pool.map(lambda i: stub.Generate(request(i, new_tokens)),
                                                           range(count)))
    return tokens / (time.perf_counter() - started)


def greedy_matches(stub, local: InProcess, new_tokens: int, prompts: int = 4) -> int:
    """How many of the first `prompts` answers of the service equal in-process `generate`'s, text for text."""
    matches = 0
    for index in range(prompts):
        ids = local.generate_ids([index], new_tokens)[0]
        body = local.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        expected = PREFIX + ANSWER_FORMAT.final(body)[0]
        matches += stub.Generate(request(index, new_tokens)).generated_text == expected
    return matches


def tokens_per_second(local: InProcess, batch: int, new_tokens: int) -> float:
    local.generate(list(range(batch)), 2)  # warm up this shape
    seconds, tokens = timed(local.generate, list(range(batch)), new_tokens)
    return tokens / seconds


def sft_step_ratio(tokenizer_dir: pathlib.Path, placement, steps: int, smoke: bool) -> tuple[float, float]:
    """Median seconds per SFT step: LoRA and full fine-tuning, same rows."""
    import statistics

    from bench_trainer import rows_near_max_length, time_steps

    from services.common.base_model import choose, load_tokenizer
    from services.trainer.training.sft import BATCH_SIZE

    tokenizer = load_tokenizer(choose(str(tokenizer_dir), tokenizer_dir.parent))
    rows = rows_near_max_length(tokenizer, 64 if smoke else 256, BATCH_SIZE * (steps + 1))
    config = {"n_layer": 2, "n_embd": 64, "n_head": 2, "vocab_size": len(tokenizer)} if smoke else {}
    lora, full = (statistics.median(d for d, _ in time_steps(use_lora, tokenizer, rows, steps, 1, placement,
                                                                      config))
                  for use_lora in (True, False))
    return lora, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the tiny model and a few tokens: runs anywhere")
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    new_tokens, sft_steps = (4, 2) if args.smoke else (args.new_tokens, 5)
    placement = devices.resolve("auto", "auto", "LLM")
    gpu = torch.cuda.get_device_name(placement.device) if placement.on_gpu else "no GPU: the CPU"
    print(f"placement: {placement.describe()} ({gpu}); torch {torch.__version__}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        folder = pathlib.Path(tmp)
        model_dir = build_tiny_model(folder / "tiny") if args.smoke else build_gpt2_size_model(folder / "gpt2-size")
        local = InProcess(model_dir, str(placement.device), placement.dtype)
        env = {"LLM_BASE_MODEL": str(model_dir), "MODELS_DIR": tmp, "LLM_DEVICE": str(placement.device),
               "LLM_DTYPE": str(placement.dtype).removeprefix("torch.")}
        with start_service("services.llm", {**env, "LLM_MAX_BATCH_SIZE": "32"}, "LLM_PORT") as on, \
                start_service("services.llm", {**env, "LLM_MAX_BATCH_SIZE": "1"}, "LLM_PORT") as off, \
                grpc.insecure_channel(on.address) as on_channel, grpc.insecure_channel(off.address) as off_channel:
            batched, unbatched = llm_pb2_grpc.LlmServiceStub(on_channel), llm_pb2_grpc.LlmServiceStub(off_channel)
            batched.Generate(request(0, 2)), unbatched.Generate(request(0, 2)), local.generate([0], 2)  # warm up
            matches = greedy_matches(batched, local, new_tokens)
            service_latency, _ = timed(batched.Generate, request(0, new_tokens))
            local_latency, _ = timed(local.generate, [0], new_tokens)
            service_rate, off_rate = clients(batched, 8, new_tokens), clients(unbatched, 8, new_tokens)
            local_rate = tokens_per_second(local, 8, new_tokens)
        rates = {batch: tokens_per_second(local, batch, new_tokens) for batch in (1, 8, 32)}
        lora, full = sft_step_ratio(model_dir if args.smoke else folder / "gpt2-size-tokenizer",
                                    devices.resolve("auto", "auto", "TRAINER"), sft_steps, args.smoke)
    print(f"greedy answers, service == in-process generate: {matches}/4")
    print(f"single request: service {service_latency:.3f} s, in-process {local_latency:.3f} s, "
          f"ratio {service_latency / local_latency:.2f} (target <= 1.10)")
    print(f"8 clients: service {service_rate:.1f} tok/s, in-process batch 8 {local_rate:.1f} tok/s, "
          f"ratio {service_rate / local_rate:.2f} (target >= 0.85)")
    print(f"8 clients: batching on {service_rate:.1f} tok/s, off {off_rate:.1f} tok/s, "
          f"ratio {service_rate / off_rate:.2f}")
    print("in-process tokens/s: " + ", ".join(f"batch {b}: {r:.1f}" for b, r in rates.items()))
    print(f"SFT step: LoRA {lora:.3f} s, full {full:.3f} s, ratio {lora / full:.2f}")
    print(f"took {time.perf_counter() - started:.0f} s")
    raise SystemExit(0 if matches == 4 else 1)


if __name__ == "__main__":
    main()
