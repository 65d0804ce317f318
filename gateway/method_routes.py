"""One Envoy route per REST-annotated gRPC method: its service's cluster, gateway/backends.py's timeout, rate
limit and API key scopes, a retry policy where the proto marks the method idempotent, and the OpenAI methods' own filters."""
from google.protobuf import descriptor_pb2

from gateway import openai_routes
from gateway import edge
from gateway.backends import BACKENDS, Backend
from gateway.http_rules import HttpBinding
from gateway.rate_limits import route_metadata
from gateway.targets import Target

# Calls the protos mark idempotent (`option idempotency_level`) are retried on another replica when one is down or
# going down; a training request never is (a retry could queue a second job).
RETRY_POLICY = {"retry_on": "connect-failure,refused-stream,reset,unavailable", "num_retries": 3,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": 5}


def method_routes(target: Target, bindings: list[HttpBinding]) -> list[dict]:
    routes = []
    http_methods = {}  # by gRPC path: every REST binding of the method
    for binding in bindings:
        http_methods.setdefault(binding.grpc_path, set()).add(binding.http_method)
    for binding in bindings:
        backend: Backend = BACKENDS[binding.method.containing_service.full_name]
        timeout = target.route_timeouts.get(backend.name) or (
            backend.stream_timeout_seconds if binding.method.server_streaming else backend.timeout_seconds)
        route = {"match": {"path": binding.grpc_path}, "route": {"cluster": backend.name, "timeout": f"{timeout}s"}}
        if binding.method.GetOptions().idempotency_level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN:
            route["route"]["retry_policy"] = RETRY_POLICY
        route["metadata"] = route_metadata(backend.rate_limit_of(binding.method))
        route["metadata"]["filter_metadata"][edge.METADATA_NAMESPACE][edge.SCOPES_KEY] = backend.scopes_of(
            http_methods[binding.grpc_path])
        filters = openai_routes.method_route_filters(binding.method.containing_service.full_name)
        if binding.method.client_streaming:  # an upload
            filters[openai_routes.BUFFER] = openai_routes.upload_cap(target.max_upload_bytes)
        if filters:
            route["typed_per_filter_config"] = filters
        if route not in routes:  # additional bindings map to the same method
            routes.append(route)
    return routes
