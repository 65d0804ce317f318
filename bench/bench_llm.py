"""The llm service against in-process transformers `generate`, on two models:
  gpt2-size: GPT2Config() defaults (124M parameters, 50257-token vocabulary, random weights, nothing downloaded);
  embedded:  the embedded SmolLM2-135M-Instruct (a Llama: rotary positions, 49152-token vocabulary), made under
             MODELS_DIR first when it is missing (make embedded-model).

    python bench/bench_llm.py [--models gpt2-size,embedded] [--new-tokens 32] [--reps 3] [--threads 1]

gpt2-size's tokenizer: the tiny model's byte-level BPE (trained on the shipped corpus) padded with placeholder
tokens to GPT-2's 50257 entries, so the output layer has GPT-2's real size and every generated id decodes.
Both sides run torch on --threads threads (LLM_TORCH_THREADS for the service); each figure is the best of --reps
interleaved runs, so that CPU-heavy neighbours on a small machine disturb the comparison as little as possible.
Prints three ratios for each model:
  single request latency, service / in-process generate (target <= 1.10)
  8 concurrent clients, service tokens/s / in-process generate at batch 8 (target >= 0.85)
  8 concurrent clients, service tokens/s batching on / batching off (LLM_MAX_BATCH_SIZE=1) (target >= 1.8)
"""
import argparse
import concurrent.futures
import pathlib
import tempfile
import time


import grpc
import torch
from textgen.v1 import llm_pb2, llm_pb2_grpc

from devtools.models import build_gpt2_size_model
from devtools.processes import start_service
from services.common import embedded_model
from services.common.config import ServiceConfig
from services.common.prompts import PREFIX, qa_prompt

CONTEXT = ("The ship came into the harbour at noon. The captain stood on the deck and looked at the sea, which was "
           "calm; the sky was clear and the sailors were already thinking of home. ")
QUESTIONS = ["Who stood on the deck?", "When did the ship arrive?", "What was the sea like?", "Where was the ship?",
             "What were the sailors thinking of?", "Was the sky clear?", "Who looked at the sea?",
             "What came into the harbour?"]


def request(index: int, new_tokens: int) -> llm_pb2.LlmGenerateRequest:
    return llm_pb2.LlmGenerateRequest(question=QUESTIONS[index % len(QUESTIONS)], context=CONTEXT,
                                      max_new_tokens=new_tokens, adapter="base")


class InProcess:
    """What the service is compared with: the same prompt ids (prompt + forced prefix) through `generate`, on the
    same device and in the same dtype as the service (default: the CPU, float32)."""

    def __init__(self, model_dir: pathlib.Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()

    def ids(self, index: int) -> list[int]:
        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        return encode(qa_prompt(QUESTIONS[index % len(QUESTIONS)], CONTEXT)) + encode(f" {PREFIX}")

    def generate_ids(self, indices: list[int], new_tokens: int) -> list[list[int]]:
        """The greedy continuation of each prompt, up to EOS."""
        rows = [self.ids(i) for i in indices]
        width = max(map(len, rows))
        eos = self.tokenizer.eos_token_id
        input_ids = torch.tensor([[eos] * (width - len(r)) + r for r in rows], device=self.device)
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=new_tokens,
                                      do_sample=False, pad_token_id=eos, eos_token_id=eos)
        return [[t for t in row if t != eos] for row in out[:, width:].tolist()]

    def generate(self, indices: list[int], new_tokens: int) -> int:
        """Tokens generated for `indices` in one batch."""
        return sum(map(len, self.generate_ids(indices, new_tokens)))


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def concurrent_calls(stub, clients: int, new_tokens: int, texts: list | None = None) -> int:
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(lambda i: stub.Generate(request(i, new_tokens)), range(clients)))
    if texts is not None:
        texts.append([r.generated_text for r in responses])
    return sum(r.generated_tokens for r in responses)


def measure(model_dir: pathlib.Path, label: str, models_dir: str, args) -> None:
    local = InProcess(model_dir)
    print(f"model: {label}, {sum(p.numel() for p in local.model.parameters()) / 1e6:.0f}M parameters; prompt "
          f"{len(local.ids(0))} tokens; {args.new_tokens} new tokens; greedy; torch threads {torch.get_num_threads()}")
    env = {"LLM_BASE_MODEL": str(model_dir), "MODELS_DIR": models_dir, "LLM_TORCH_THREADS": str(args.threads)}
    with start_service("services.llm", {**env, "LLM_MAX_BATCH_SIZE": str(args.clients)}, "LLM_PORT") as on, \
            start_service("services.llm", {**env, "LLM_MAX_BATCH_SIZE": "1"}, "LLM_PORT") as off, \
            grpc.insecure_channel(on.address) as on_channel, grpc.insecure_channel(off.address) as off_channel:
        batched, unbatched = llm_pb2_grpc.LlmServiceStub(on_channel), llm_pb2_grpc.LlmServiceStub(off_channel)
        batched.Generate(request(0, 4)), unbatched.Generate(request(0, 4)), local.generate([0], 4)  # warm up
        single = {"service": [], "local": []}
        throughput = {"service": [], "local": [], "service, batching off": []}
        texts = {"on": [], "off": []}
        for _ in range(args.reps):  # interleaved, so a noisy neighbour hurts both sides alike
            seconds, local_tokens = timed(local.generate, [0], args.new_tokens)
            single["local"].append(seconds)
            seconds, response = timed(batched.Generate, request(0, args.new_tokens))
            single["service"].append(seconds)
            assert response.generated_tokens == local_tokens, (response.generated_tokens, local_tokens)
            seconds, tokens = timed(local.generate, list(range(args.clients)), args.new_tokens)
            throughput["local"].append(tokens / seconds)
            seconds, tokens = timed(concurrent_calls, batched, args.clients, args.new_tokens, texts["on"])
            throughput["service"].append(tokens / seconds)
            seconds, tokens = timed(concurrent_calls, unbatched, args.clients, args.new_tokens, texts["off"])
            throughput["service, batching off"].append(tokens / seconds)
        largest = batched.GetStatus(llm_pb2.GetLlmStatusRequest()).largest_batch
    latency = {k: min(v) for k, v in single.items()}
    rate = {k: max(v) for k, v in throughput.items()}
    print(f"single request: service {latency['service']:.2f} s, in-process generate {latency['local']:.2f} s")
    print(f"{args.clients} concurrent clients: " + ", ".join(f"{k} {v:.1f} tok/s" for k, v in rate.items())
          + f" (largest batch formed: {largest})")
    print(f"greedy answers batched == unbatched: {texts['on'] == texts['off']}")
    print(f"ratio latency service/in-process            {latency['service'] / latency['local']:.2f}  (target <= 1.10)")
    print(f"ratio throughput service/in-process batch {args.clients}  "
          f"{rate['service'] / rate['local']:.2f}  (target >= 0.85)")
    print(f"ratio throughput batching on/off            {rate['service'] / rate['service, batching off']:.2f}  "
          "(target >= 1.8)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gpt2-size,embedded", help="comma-separated: gpt2-size, embedded")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        if name == "gpt2-size":
            with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
                measure(build_gpt2_size_model(pathlib.Path(tmp) / "gpt2-size"), "GPT2Config() random weights", tmp,
                        args)
        elif name == "embedded":
            models_dir = ServiceConfig.from_env().models_dir
            measure(embedded_model.ensure(models_dir, show_progress=True), embedded_model.NAME, str(models_dir), args)
        else:
            parser.error(f"unknown model {name!r}: gpt2-size or embedded")


if __name__ == "__main__":
    main()
