"""The local REST gateway: Envoy's grpc_json_transcoder behaviour for our routes, where Envoy cannot run."""
import contextlib
import logging

import grpc
import swagger_ui_bundle
from google.rpc import code_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route as HttpRoute
from starlette.staticfiles import StaticFiles

from gateway.local.config import GatewayConfig
from gateway.local.openapi import openapi_document
from gateway.local.routes import build_routes, find_route, load_descriptor_set
from gateway.local.transcode import TranscodeError, build_request, error_from_rpc, message_json
from gateway.local.upstream import Upstreams

log = logging.getLogger("textgen.gateway")

JSON = "application/json"
NDJSON = "application/x-ndjson"
DOCS_PAGE = """<!doctype html><html><head><title>textgen API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script><script>
SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script></body></html>"""


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TranscodeError(413, code_pb2.RESOURCE_EXHAUSTED, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TranscodeError(413, code_pb2.RESOURCE_EXHAUSTED, f"request body over {limit} bytes")
    return bytes(body)


def create_app(config: GatewayConfig) -> Starlette:
    files = load_descriptor_set(config.descriptor_set)
    routes = build_routes(files)
    upstreams: Upstreams | None = None  # gRPC channels belong to the serving event loop: made in lifespan
    openapi = openapi_document(routes, files)

    async def transcode(request: Request) -> Response:
        try:
            found = find_route(routes, request.method, request.url.path)
            if found is None:
                raise TranscodeError(404, code_pb2.NOT_FOUND,
                                     f"no route for {request.method} {request.url.path}")
            route, path_values = found
            body = await _read_body(request, config.max_body_bytes)
            message = build_request(route, body, path_values, request.query_params.multi_items())
        except TranscodeError as error:
            return Response(error.body(), error.http_status, media_type=JSON)
        call = upstreams.call(route, message, request.headers)
        if route.server_streaming:
            return await _stream(call)
        try:
            return Response(message_json(await call), media_type=JSON)
        except grpc.RpcError as error:
            status, body = error_from_rpc(error)
            return Response(body, status, media_type=JSON)

    async def _stream(call) -> Response:
        # The first message decides the HTTP status; once headers are sent an error can only end the stream,
        # so it is written as a last line {"error": google.rpc.Status}.
        try:
            first = await call.read()
        except grpc.RpcError as error:
            status, body = error_from_rpc(error)
            return Response(body, status, media_type=JSON)
        if first is grpc.aio.EOF:
            return Response(b"", media_type=NDJSON)

        async def lines():
            try:
                message = first
                while message is not grpc.aio.EOF:
                    yield message_json(message) + b"\n"
                    message = await call.read()
            except grpc.RpcError as error:
                yield b'{"error":' + error_from_rpc(error)[1] + b"}\n"
            finally:
                call.cancel()

        return StreamingResponse(lines(), media_type=NDJSON)

    async def docs(_: Request) -> Response:
        return HTMLResponse(DOCS_PAGE)

    async def openapi_json(_: Request) -> Response:
        return JSONResponse(openapi)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def unexpected(_: Request, error: Exception) -> Response:
        log.exception("gateway bug", exc_info=error)
        return Response(TranscodeError(500, code_pb2.INTERNAL, "internal gateway error").body(), 500,
                        media_type=JSON)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        nonlocal upstreams
        upstreams = Upstreams(routes)
        log.info("gateway routes", extra={"routes": [f"{r.http_method} {r.template.template}" for r in routes]})
        yield
        await upstreams.close()

    return Starlette(
        routes=[
            HttpRoute("/openapi.json", openapi_json, methods=["GET"]),
            HttpRoute("/docs", docs, methods=["GET"]),
            Mount("/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger"),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/{path:path}", transcode, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: unexpected},
    )
