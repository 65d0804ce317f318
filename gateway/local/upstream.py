"""One gRPC channel per backend, calling methods by path with the route's own message classes."""
import grpc

from gateway.backends import BACKENDS
from gateway.local.routes import Route

# A backend that comes back is found within about a second, not after gRPC's default 2-minute backoff.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]
FORWARDED_HEADERS = ("authorization", "x-request-id", "traceparent")


class Upstreams:
    def __init__(self, routes: list[Route]) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables = {}
        for route in routes:
            service = route.method.containing_service.full_name
            if service not in self._channels:
                self._channels[service] = grpc.aio.insecure_channel(BACKENDS[service].address(),
                                                                   options=CHANNEL_OPTIONS)
            channel = self._channels[service]
            make = channel.unary_stream if route.server_streaming else channel.unary_unary
            self._callables[route.grpc_path] = make(
                route.grpc_path,
                request_serializer=route.request_class.SerializeToString,
                response_deserializer=route.response_class.FromString,
            )

    def call(self, route: Route, request, headers) -> grpc.aio.Call:
        backend = BACKENDS[route.method.containing_service.full_name]
        timeout = backend.stream_timeout_seconds if route.server_streaming else backend.timeout_seconds
        metadata = [(name, headers[name]) for name in FORWARDED_HEADERS if name in headers]
        return self._callables[route.grpc_path](request, timeout=timeout, metadata=metadata)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
