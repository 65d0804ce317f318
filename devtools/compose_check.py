"""The whole system under Docker Compose, for real (`make compose-check`, after `make images`):

  1. up: docker-compose.yml (cpu profile) from the textgen-* images, with the small stand-in models in a models
     folder (a random tiny GPT-2 and a 2-epoch LSTM, devtools.processes.stand_in_models), a fresh API key and, with
     docker-compose.tls.yml, a certificate made for the run (devtools/certificates.py): Envoy answers HTTPS only;
  2. pages public, everything else behind the key; hardened: every container runs as uid 10001 on a read-only root
     file system, and no image's history or configuration holds the key;
  3. the REST suite (suites/fuzz_rest.py --quick) and the openai client (a chat completion; a response stored,
     continued by previous_response_id and retrieved), over HTTPS trusting only the run's CA, with the key, through
     the containerised Envoy on GATEWAY_PORT; then OpenAI's fine-tuning flow with that client:
     upload, a job followed to its end, its model asked, file and model deleted;
  4. llm scaled to 2; a tiny SFT job through REST; the adapter it publishes served by both replicas, each asked
     directly inside its container; then a newer version published with no replica told, and a switch back through
     REST: each replica's next request serves the new current version;
  5. one llm container killed under load through Envoy: no request may fail;
  6. down, volumes and all.

    python -m devtools.compose_check              # prints each step's figures; exit 1 if an expectation fails

Needs a running Docker engine and Compose (v2's `docker compose` or v1's `docker-compose`), and says so.
"""
import json
import os
import pathlib
import secrets
import ssl
import subprocess
import sys
import tempfile
import time

import httpx
import yaml

from devtools.compose_project import SERVICE_UID, CheckFailed, Compose, compose_command, stand_in_override
from devtools.certificates import make_certificates
from devtools.compose_steps import (cancel_open_jobs, check_hardening, check_openai, check_pages, fine_tune,
                                    kill_one_under_load, publish_and_switch, rest_suite, train_and_check_replicas,
                                    wait_ready)
from devtools.images import TARGETS, ImageError, docker, image_name, require_engine
from devtools.processes import stand_in_models
from textgen.endpoints import GATEWAY_PORT
from textgen.paths import ROOT


def say(line: str) -> None:
    print(line, flush=True)


def run(port: int) -> None:
    command = compose_command()
    if command is None:
        raise ImageError("no Docker Compose here: install Compose v2 (docker compose) or v1 (Debian: apt-get "
                         "install docker-compose)")
    missing = [image_name(t) for t in TARGETS if docker("image", "inspect", image_name(t), capture_output=True).returncode]
    if missing:
        raise ImageError(f"no image {', '.join(missing)}: run make images first")
    token = secrets.token_hex(16)  # the one API key, with every scope
    url, auth = f"https://localhost:{port}", {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory(prefix="textgen-compose-") as tmp:
        keys = pathlib.Path(tmp) / "api-keys.json"
        keys.write_text(json.dumps([{"name": "compose-check", "key": token, "scopes": ["generate", "train", "read"]}]))
        keys.chmod(0o644)  # read in the container by uid 10001
        tls = make_certificates(pathlib.Path(tmp) / "tls")
        trusted = ssl.create_default_context(cafile=tls.ca)
        models = stand_in_models(pathlib.Path(tmp) / "models")
        subprocess.run(["chown", "-R", f"{SERVICE_UID}:{SERVICE_UID}", str(models)], check=True)
        override = pathlib.Path(tmp) / "check.yml"
        override.write_text(yaml.safe_dump(stand_in_override(models)))
        environ = {**os.environ, "API_KEYS_FILE": str(keys), "GATEWAY_TLS_CERT": str(tls.cert),
                   "GATEWAY_TLS_KEY": str(tls.key), "MODELS_VOLUME": str(models), "GATEWAY_PORT": str(port),
                   "COMPOSE_PROFILES": "cpu"}
        compose = Compose(command, override, environ, also=("docker-compose.tls.yml",))
        started = time.monotonic()
        try:
            compose("up", "--detach")
            with httpx.Client(base_url=url, timeout=60, verify=trusted, headers=auth) as api, \
                    httpx.Client(base_url=url, timeout=60, verify=trusted) as anonymous:
                wait_ready(api, 300)
                say(f"up: every service answering through Envoy on {url} after {time.monotonic() - started:.0f} s")
                say("pages: " + check_pages(anonymous))
                say("hardened: " + check_hardening(compose, token))
                suite_started = time.monotonic()
                suite = rest_suite(url, token, tls.ca)
                say(f"REST suite through Envoy ({time.monotonic() - suite_started:.0f} s): {suite}")
                say("openai client: " + check_openai(url, token, trusted))
                cancel_open_jobs(api, auth)
                say("fine-tuning: " + fine_tune(url, token, trusted))
                say("replicas: " + train_and_check_replicas(compose, api, auth))
                say("publish and switch: " + publish_and_switch(compose, api, auth, models))
                say("kill: " + kill_one_under_load(compose, api))
        finally:
            logs = subprocess.run([*compose.base, "logs", "--no-color", "--tail", "40"], cwd=ROOT, env=environ,
                                  capture_output=True, text=True).stdout if sys.exc_info()[0] else ""
            subprocess.run([*compose.base, "down", "--volumes", "--remove-orphans", "--timeout", "10"], cwd=ROOT,
                           env=environ, capture_output=True, timeout=300)
            if logs:
                print(logs[-6000:], file=sys.stderr)
        say(f"down: all in {time.monotonic() - started:.0f} s")


def main() -> int:
    port = int(os.environ.get("GATEWAY_PORT", GATEWAY_PORT))
    try:
        require_engine()
        run(port)
    except ImageError as error:
        print(f"make compose-check: {error}", file=sys.stderr)
        return 2
    except CheckFailed as failure:
        print(f"compose-check FAILED: {failure}", file=sys.stderr)
        return 1
    print("compose-check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
