"""Every image of the system, built with no network inside the builds (`make images`).

    python -m devtools.images                 # the CPU images: textgen-{baseline,rnn,llm,trainer,envoy}:latest
    python -m devtools.images --variant gpu   # the llm and trainer with torch's CUDA build (compose's gpu profile)

1. The wheelhouse: `pip download` of every pinned requirement set into wheelhouse/<variant>/, through the host's own
   pip configuration (its index, proxy, certificates, wheel folders). TORCH_INDEX in the environment adds an index
   for torch's CPU wheels where the host's pip has none; nothing in this repository names an index.
2. The base image: BASE_IMAGE, python:3.11-slim unless set. Where it is neither here nor pullable, a Python 3.11
   image made from Debian's packages with debootstrap (from the mirror the host's apt uses), and it says so.
3. `docker build --target <image>` for each, every pip install inside from that wheelhouse with --no-index.

Needs a running Docker engine and says so when there is none. Prints each build's time and each image's size.
"""
import argparse
import dataclasses
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

from gateway import adapter_affinity
from gateway.rate_limits import DEFAULT_BUCKETS, burst_variable, rate_variable
from textgen.endpoints import ENDPOINTS
from textgen.paths import ROOT

DEFAULT_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = "textgen-local/debian-python:bookworm"
TARGETS = (*ENDPOINTS, "envoy")  # an image per service, and Envoy's
# The torch wheel decides the variant. `+cpu` is the CPU build's local version (from TORCH_INDEX or a host's wheel
# folder); `===` asks for exactly 2.13.0, the default index's CUDA build, and never a `+cpu` one a host may hold.
TORCH = {"cpu": "torch==2.13.0+cpu", "gpu": "torch===2.13.0"}
VARIANT_TARGETS = {"cpu": TARGETS, "gpu": ("llm", "trainer")}


class ImageError(RuntimeError):
    """A step that cannot go on, with what to do about it."""


def image_name(target: str, variant: str = "cpu") -> str:
    return f"textgen-{target}:latest" if variant == "cpu" else f"textgen-{target}:{variant}"


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], text=True, **kwargs)


def require_engine() -> None:
    if shutil.which("docker") is None:
        raise ImageError("no docker command here: install a Docker engine (Debian: apt-get install docker.io)")
    info = docker("info", "--format", "{{.ServerVersion}}", capture_output=True, timeout=30)
    if info.returncode != 0:
        raise ImageError("no Docker engine answers (" + (info.stderr.strip().splitlines() or ["?"])[-1] + "): start "
                         "one, e.g. .ci/docker-engine as root (it installs Debian's docker.io where it is missing)")


def requirement_sets() -> list[pathlib.Path]:
    """What the images install from: every set in requirements/ but dev.txt (.dockerignore keeps that one out)."""
    return [path for path in sorted((ROOT / "requirements").glob("*.txt")) if path.name != "dev.txt"]


def fill_wheelhouse(variant: str, environ=os.environ) -> pathlib.Path:
    if sys.version_info[:2] != (3, 11):
        raise ImageError(f"the images' wheels are for Python 3.11; this is {platform.python_version()}: run "
                         "make images from the project's venv")
    wheelhouse = ROOT / "wheelhouse" / variant
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = [arg for path in requirement_sets() for arg in ("-r", str(path))]
    index = [f"--extra-index-url={environ['TORCH_INDEX']}"] if environ.get("TORCH_INDEX") else []
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                             "--dest", str(wheelhouse), *index, *requirements, TORCH[variant]],
                            capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        hint = (" (the CPU build of torch: set TORCH_INDEX to an index of torch's CPU wheels)"
                if variant == "cpu" and "torch" in "\n".join(errors) else "")
        raise ImageError("pip download failed" + hint + ":\n" + "\n".join(errors or result.stderr.splitlines()[-5:]))
    stale = [wheel for wheel in wheelhouse.glob("torch-*.whl") if ("+cpu" in wheel.name) != (variant == "cpu")]
    for wheel in stale:
        wheel.unlink()
    return wheelhouse


def debian_mirror(sources: str) -> str | None:
    """The Debian archive an apt sources file names (deb822 `URIs:` or a one-line `deb` entry), if any."""
    match = re.search(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)/?\s", sources, flags=re.MULTILINE)
    return match[1] if match else None


def apt_mirror() -> str | None:
    """The Debian mirror the host's apt uses, so debootstrap goes where apt goes (its own default otherwise)."""
    for sources in sorted(pathlib.Path("/etc/apt").glob("sources.list*")) + \
            sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*")):
        if sources.is_file() and (mirror := debian_mirror(sources.read_text())):
            return mirror
    return None


def local_base_image() -> str:
    """Python 3.11 with venv from Debian bookworm's packages: what python:3.11-slim gives, where it cannot be pulled."""
    if docker("image", "inspect", LOCAL_BASE_IMAGE, capture_output=True).returncode == 0:
        return LOCAL_BASE_IMAGE
    if shutil.which("debootstrap") is None:
        raise ImageError("the base image cannot be pulled and debootstrap is missing: apt-get install debootstrap, "
                         "or set BASE_IMAGE to a Python 3.11 image this engine has")
    with tempfile.TemporaryDirectory(prefix="textgen-rootfs-") as rootfs:
        mirror = apt_mirror()
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        "bookworm", rootfs, *([mirror] if mirror else [])], check=True, capture_output=True)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in pathlib.Path(rootfs, cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", LOCAL_BASE_IMAGE, stdin=tar.stdout, check=True, capture_output=True)
        tar.wait()
    return LOCAL_BASE_IMAGE


def base_image(requested: str | None) -> str:
    name = requested or DEFAULT_BASE_IMAGE
    if docker("image", "inspect", name, capture_output=True).returncode == 0:
        return name
    pulled = docker("pull", name, capture_output=True, timeout=300)
    if pulled.returncode == 0:
        return name
    if requested:
        raise ImageError(f"BASE_IMAGE {name} is not here and cannot be pulled: {pulled.stderr.strip()}")
    print(f"{name} cannot be pulled ({pulled.stderr.strip().splitlines()[-1]}); building {LOCAL_BASE_IMAGE} from "
          "Debian's packages instead (debootstrap)", flush=True)
    started = time.monotonic()
    local = local_base_image()
    print(f"{local}: ready in {time.monotonic() - started:.0f} s", flush=True)
    return local


def gateway_build_args(environ) -> dict[str, str]:
    """The gateway's rate limits and adapter affinity are rendered into the Envoy image: the host's settings of them,
    where set."""
    variables = [variable(name) for name in DEFAULT_BUCKETS for variable in (rate_variable, burst_variable)]
    variables.append(adapter_affinity.VARIABLE)
    return {name: environ[name] for name in variables if name in environ}


@dataclasses.dataclass
class Built:
    image: str
    seconds: float
    megabytes: float


def build(target: str, variant: str, base: str, build_args: dict[str, str]) -> Built:
    started = time.monotonic()
    args = [arg for key, value in {"BASE_IMAGE": base, "WHEELHOUSE": f"wheelhouse/{variant}", **build_args}.items()
            for arg in ("--build-arg", f"{key}={value}")]
    result = docker("build", "--quiet", *args, "--target", target, "--tag", image_name(target, variant), str(ROOT),
                    capture_output=True)
    if result.returncode != 0:
        raise ImageError(f"docker build --target {target} failed:\n{result.stderr[-3000:]}")
    size = docker("image", "inspect", "--format", "{{.Size}}", image_name(target, variant), capture_output=True,
                  check=True).stdout
    return Built(image_name(target, variant), time.monotonic() - started, int(size) / 1e6)


def build_all(variant: str = "cpu", targets: tuple[str, ...] | None = None, environ=os.environ) -> list[Built]:
    require_engine()
    started = time.monotonic()
    fill_wheelhouse(variant, environ)
    print(f"wheelhouse/{variant}: filled in {time.monotonic() - started:.0f} s", flush=True)
    base = base_image(environ.get("BASE_IMAGE"))
    built = []
    for target in targets or VARIANT_TARGETS[variant]:
        built.append(build(target, variant, base, gateway_build_args(environ)))
        print(f"{built[-1].image}: built in {built[-1].seconds:.0f} s, {built[-1].megabytes:.0f} MB", flush=True)
    return built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(VARIANT_TARGETS), default="cpu")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"only these of {', '.join(TARGETS)} (default: all)")
    args = parser.parse_args()
    if unknown := set(args.targets) - set(TARGETS):
        parser.error(f"no such image: {', '.join(sorted(unknown))}; the images are {', '.join(TARGETS)}")
    try:
        build_all(args.variant, tuple(args.targets) or None)
    except ImageError as error:
        print(f"make images: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
