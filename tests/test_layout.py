"""The layout holds what it promises: every path textgen.paths names exists, and packages import only downwards
(a service never imports the development tools, make run's supervisor, the tests or another service, only
services.common; the shared contracts package never imports a service)."""
import ast
import pathlib

import pytest

from textgen import paths

LAYERS = {  # package -> the first-party packages it must never import
    "services": {"devtools", "launch", "tests", "bench", "suites", "gateway"},
    "textgen": {"services", "devtools", "launch", "tests", "gateway"},
    "gateway": {"services", "devtools", "launch", "tests"},
    "launch": {"devtools", "tests"},
}


def test_every_path_named_exists():
    named = {name: value for name, value in vars(paths).items() if isinstance(value, pathlib.Path)}
    assert named["ROOT"] == pathlib.Path(__file__).resolve().parent.parent
    missing = [f"{name} = {value}" for name, value in named.items() if not value.exists()]
    assert not missing, missing


def imported_modules(source: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def sources(package: pathlib.Path) -> list[pathlib.Path]:
    return [source for source in package.rglob("*.py") if paths.STUBS not in source.parents]


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_package_never_imports_a_layer_above_it(package):
    offending = {f"{source.relative_to(paths.ROOT)} imports {name}" for source in sources(paths.ROOT / package)
                 for name in imported_modules(source) if name.split(".")[0] in LAYERS[package]}
    assert not offending, sorted(offending)


def test_a_service_imports_no_other_service():
    offending = set()
    for service in (paths.ROOT / "services").iterdir():
        if service.is_dir() and service.name not in ("common", "__pycache__"):
            allowed = (f"services.{service.name}", "services.common")
            offending |= {f"{source.relative_to(paths.ROOT)} imports {name}" for source in sources(service)
                          for name in imported_modules(source)
                          if name.startswith("services.") and not name.startswith(allowed)}
    assert not offending, sorted(offending)


def test_the_trainer_s_configuration_and_its_training_pipeline_never_import_each_other():
    """services/trainer/decisions.py is where they meet; the pipeline knows nothing of the trainer's other rooms (its
    servicers, jobs, files, configuration)."""
    trainer = paths.ROOT / "services" / "trainer"
    config_imports = imported_modules(trainer / "config.py")
    assert not {name for name in config_imports if name.startswith("services.trainer.training")}
    training = {f"{source.relative_to(paths.ROOT)} imports {name}" for source in sources(trainer / "training")
                for name in imported_modules(source)
                if name.startswith("services.trainer.") and not name.startswith("services.trainer.training")}
    assert not training, sorted(training)
