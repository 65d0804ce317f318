"""Service configuration from environment variables: one dataclass per service, each field naming its variable."""
import dataclasses
import os
import pathlib
import typing
from collections.abc import Mapping

from textgen.endpoints import LOOPBACK


def env_field(variable: str, default, help: str = ""):
    """A dataclass field read from `variable` when it is set, else `default`."""
    return dataclasses.field(default=default, metadata={"env": variable, "help": help})


def device_field(service: str):
    """SERVICE_DEVICE: where a service's model runs (services.common.devices resolves it)."""
    return env_field(f"{service}_DEVICE", "auto", "auto (CUDA when present), cpu, cuda or cuda:N")


def dtype_field(service: str, auto: str, purpose: str = ""):
    """SERVICE_DTYPE: the model's dtype; `auto` says what auto picks for this service."""
    return env_field(f"{service}_DTYPE", "auto", f"{purpose}auto ({auto}), float32, bfloat16 or float16")


class ConfigError(SystemExit):
    """A malformed environment variable: the process exits with this message instead of a traceback."""


def _parse(kind, raw: str, variable: str):
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind is pathlib.Path:
            return pathlib.Path(raw)
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """What every gRPC service reads. Subclasses redefine `port`/`metrics_port` with their own variable."""

    port: int = env_field("PORT", 50050, "gRPC port (0 picks a free one)")
    bind_address: str = env_field("BIND_ADDRESS", LOOPBACK, "where the gRPC and metrics ports listen: loopback "
                                  "unless opened (0.0.0.0: every interface, as the images set it)")
    metrics_port: int = env_field("METRICS_PORT", -1, "Prometheus /metrics port; 0 picks a free one, -1 disables")
    grace_seconds: float = env_field("GRACE_SECONDS", 10.0, "in-flight calls get this long to finish on SIGTERM")
    log_level: str = env_field("LOG_LEVEL", "INFO", "Python logging level")
    models_dir: pathlib.Path = env_field("MODELS_DIR", pathlib.Path("models"), "trained artifacts and caches")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ):
        hints = typing.get_type_hints(cls)
        values = {}
        for field in dataclasses.fields(cls):
            variable = field.metadata.get("env")
            if variable and variable in environ:
                values[field.name] = _parse(hints[field.name], environ[variable], variable)
        return cls(**values)

    @classmethod
    def describe(cls) -> str:
        """One line per variable, for --help texts and the README."""
        return "\n".join(
            f"  {f.metadata['env']:<24} {f.default!s:<28} {f.metadata['help']}"
            for f in dataclasses.fields(cls)
            if "env" in f.metadata
        )
