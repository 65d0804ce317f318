"""gateway/envoy/envoy.yaml parsed into Envoy's own Bootstrap proto (xds-protos): unknown or misspelt fields fail.
Its services, clusters, routes and timeouts must match the descriptor set, gateway/backends.py and compose."""
import pathlib

import pytest
import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, json_format

from gateway.backends import BACKENDS
from tests.harness import ROOT

# Every @type the file uses must be importable, or ParseDict cannot resolve it.
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.grpc_json_transcoder.v3 import transcoder_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401

ENVOY_YAML = ROOT / "gateway" / "envoy" / "envoy.yaml"


@pytest.fixture(scope="module")
def bootstrap() -> bootstrap_pb2.Bootstrap:
    return json_format.ParseDict(yaml.safe_load(ENVOY_YAML.read_text()), bootstrap_pb2.Bootstrap())


@pytest.fixture(scope="module")
def manager(bootstrap):
    manager = http_connection_manager_pb2.HttpConnectionManager()
    bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(manager)
    return manager


@pytest.fixture(scope="module")
def descriptor_services() -> dict[str, descriptor_pb2.ServiceDescriptorProto]:
    files = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "gen" / "descriptor.pb").read_bytes())
    return {f"{f.package}.{s.name}": s for f in files.file for s in f.service
            if any(m.options.HasExtension(annotations_pb2.http) for m in s.method)}


def test_a_misspelt_field_is_rejected():
    config = yaml.safe_load(ENVOY_YAML.read_text())
    config["static_resources"]["clusters"][0]["conect_timeout"] = "1s"
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict(config, bootstrap_pb2.Bootstrap())


def test_transcoder_options(manager, descriptor_services):
    transcoder = transcoder_pb2.GrpcJsonTranscoder()
    manager.http_filters[0].typed_config.Unpack(transcoder)
    assert manager.http_filters[0].name == "envoy.filters.http.grpc_json_transcoder"
    assert manager.http_filters[-1].name == "envoy.filters.http.router"
    assert set(transcoder.services) == set(descriptor_services) == set(BACKENDS)
    options = transcoder.print_options
    assert options.preserve_proto_field_names and options.always_print_primitive_fields
    assert options.stream_newline_delimited
    assert transcoder.convert_grpc_status
    assert transcoder.request_validation_options.reject_unknown_method
    assert transcoder.request_validation_options.reject_unknown_query_parameters
    from gateway.local.config import GatewayConfig

    assert transcoder.max_request_body_size.value == GatewayConfig().max_body_bytes


def test_clusters_are_http2_with_grpc_health_checks_on_compose_services(bootstrap):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    clusters = {c.name: c for c in bootstrap.static_resources.clusters}
    assert set(clusters) == {b.name for b in BACKENDS.values()}
    for backend in BACKENDS.values():
        cluster = clusters[backend.name]
        assert cluster.type == cluster.STRICT_DNS
        assert "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" in cluster.typed_extension_protocol_options
        assert cluster.health_checks[0].HasField("grpc_health_check")
        address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
        host, port = backend.default_address.split(":")
        assert (address.address, address.port_value) == (backend.name, int(port))
        assert backend.name in compose and f"localhost:{port}" in compose[backend.name]["healthcheck"]["test"]
    assert "envoy" in compose


def test_routes_match_descriptor_and_timeouts(manager, descriptor_services):
    routes = manager.route_config.virtual_hosts[0].routes

    def route_for(grpc_path: str):
        # Envoy takes the first route that matches, as here.
        for route in routes:
            match = route.match
            if (match.path and match.path == grpc_path) or (match.prefix and grpc_path.startswith(match.prefix)):
                return route.route
        raise AssertionError(f"no route for {grpc_path}")

    for service_name, service in descriptor_services.items():
        backend = BACKENDS[service_name]
        for method in service.method:
            route = route_for(f"/{service_name}/{method.name}")
            assert route.cluster == backend.name
            expected = backend.stream_timeout_seconds if method.server_streaming else backend.timeout_seconds
            assert route.timeout.seconds == expected, f"{service_name}/{method.name}"
