import dataclasses
import pathlib

from services.common.config import ServiceConfig, env_field

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class GatewayConfig(ServiceConfig):
    port: int = env_field("GATEWAY_PORT", 8080, "HTTP port of the REST gateway")
    host: str = env_field("GATEWAY_HOST", "0.0.0.0", "interface to bind")
    descriptor_set: pathlib.Path = env_field("DESCRIPTOR_SET", ROOT / "gen" / "descriptor.pb",
                                             "protoc --descriptor_set_out --include_imports output")
    max_body_bytes: int = env_field("GATEWAY_MAX_BODY_BYTES", 1024 * 1024, "larger request bodies get 413")
