"""The gateway's Envoy configuration as the tests read it: both targets rendered as the renderer writes them, and
parsed into Envoy's own Bootstrap proto (xds-protos: a misspelt field fails)."""
import shutil

import pytest
import yaml
from google.protobuf import json_format

# Every @type the configuration uses must be importable, or ParseDict cannot resolve it.
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.route.v3 import route_components_pb2  # noqa: F401
from envoy.extensions.filters.http.buffer.v3 import buffer_pb2  # noqa: F401
from envoy.extensions.filters.http.api_key_auth.v3 import api_key_auth_pb2  # noqa: F401
from envoy.extensions.filters.http.grpc_json_transcoder.v3 import transcoder_pb2  # noqa: F401
from envoy.extensions.filters.http.header_mutation.v3 import header_mutation_pb2  # noqa: F401
from envoy.extensions.filters.http.json_to_metadata.v3 import json_to_metadata_pb2  # noqa: F401
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2  # noqa: F401
from envoy.extensions.filters.http.lua.v3 import lua_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import downstream_connections_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from gateway import render
from gateway.targets import compose_target, local_target

IMAGE_DIR = "/etc/envoy"
# Both ways a rate becomes whole tokens per fill interval: one token every 2 s, 250 tokens a second.
RATE_SETTINGS = {"GATEWAY_LLM_RATE": "0.5", "GATEWAY_LLM_BURST": "1", "GATEWAY_TRAIN_RATE": "250",
                 "GATEWAY_TRAIN_BURST": "20"}


def render_targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Both targets written as the renderer writes them; the compose one with its /etc/envoy files laid out in a
    folder of their own (descriptor, openapi.json, docs.html, swagger-ui), as the image's Dockerfile lays them out;
    the local one once more with rate limits set."""
    local_dir, image_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("etc-envoy")
    settings_dir = tmp_path_factory.mktemp("local-rate-settings")
    local = render.write(local_target({}, files_dir=local_dir), local_dir)
    settings = render.write(local_target(RATE_SETTINGS, files_dir=settings_dir), settings_dir)
    compose = render.write(compose_target({}), image_dir)
    shutil.copytree(local_target({}).swagger_ui_dir, image_dir / "swagger-ui")
    compose_here = image_dir / "envoy-here.yaml"
    compose_here.write_text(compose.read_text().replace(IMAGE_DIR, str(image_dir)))
    return {"local": {"path": local, "dict": yaml.safe_load(local.read_text())},
            "compose": {"path": compose_here, "dict": yaml.safe_load(compose.read_text())},
            "rate settings": {"path": settings, "dict": yaml.safe_load(settings.read_text())}}


def bootstrap(config: dict) -> bootstrap_pb2.Bootstrap:
    return json_format.ParseDict(config, bootstrap_pb2.Bootstrap())


def manager(config: dict) -> http_connection_manager_pb2.HttpConnectionManager:
    unpacked = http_connection_manager_pb2.HttpConnectionManager()
    bootstrap(config).static_resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(unpacked)
    return unpacked
