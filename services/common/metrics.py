"""Prometheus request count and latency per gRPC method and status; per API client too where the gateway names the
caller (services/common/callers.py's CLIENT_HEADER, which Envoy writes after checking the caller's API key: gateway/edge.py), with one log line
per such call. The key itself never reaches a service."""
import logging
import time

import grpc
import prometheus_client

from services.common.callers import caller_in

REQUESTS = prometheus_client.Counter(
    "grpc_server_handled_total", "RPCs completed, by method and status code.", ["grpc_method", "grpc_code"]
)
CLIENT_REQUESTS = prometheus_client.Counter(
    "textgen_client_requests_total", "RPCs completed for a named API client, by client, method and status code.",
    ["client", "grpc_method", "grpc_code"]
)
log = logging.getLogger("textgen.calls")
LATENCY = prometheus_client.Histogram(
    "grpc_server_handling_seconds",
    "Time from receiving an RPC to its last response message, by method.",
    ["grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def _client(handler_call_details) -> str:
    return caller_in(handler_call_details.invocation_metadata)


def _observe(method: str, context: grpc.aio.ServicerContext, started: float, failed: bool, client: str) -> None:
    code = context.code()
    if code is None:
        code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
    elif isinstance(code, int):  # aio contexts may hand back the raw integer
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    seconds = time.perf_counter() - started
    REQUESTS.labels(method, code.name).inc()
    LATENCY.labels(method).observe(seconds)
    if client:
        CLIENT_REQUESTS.labels(client, method, code.name).inc()
        log.info("call", extra={"client": client, "method": method, "code": code.name, "seconds": round(seconds, 4)})


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method, client = handler_call_details.method, _client(handler_call_details)

        def answered(inner):
            """A call with one answer, its request one message or a stream of them."""
            async def observed(request, context):
                started, failed = time.perf_counter(), True
                try:
                    response = await inner(request, context)
                    failed = False
                    return response
                finally:
                    _observe(method, context, started, failed, client)
            return observed

        if handler.unary_unary:
            return handler._replace(unary_unary=answered(handler.unary_unary))
        if handler.stream_unary:
            return handler._replace(stream_unary=answered(handler.stream_unary))
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def unary_stream(request, context):
                started, failed = time.perf_counter(), True
                try:
                    async for message in inner_stream(request, context):
                        yield message
                    failed = False
                finally:
                    _observe(method, context, started, failed, client)

            return handler._replace(unary_stream=unary_stream)
        return handler


def start_metrics_server(port: int, address: str) -> int | None:
    """Serves /metrics on `address`:`port` (0: a free one); returns the bound port, or None when disabled (-1)."""
    if port < 0:
        return None
    server, _thread = prometheus_client.start_http_server(port, addr=address)
    return server.server_port
