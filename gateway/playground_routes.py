"""How Envoy serves the /playground page (gateway/playground/): its static files as they are, one direct response
each."""
import pathlib

from gateway.targets import Target

PLAYGROUND = pathlib.Path(__file__).resolve().parent / "playground"
PLAYGROUND_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                    ".js": "text/javascript; charset=utf-8"}  # a module script needs a JavaScript type
# The page and its scripts come from this origin only: nothing is loaded from anywhere else at run time.
PLAYGROUND_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"


def playground_files() -> list[pathlib.Path]:
    return sorted(f for f in PLAYGROUND.iterdir() if f.suffix in PLAYGROUND_TYPES)


def playground_path(file: pathlib.Path) -> str:
    """The URL path of one of the playground's files: the page itself at /playground."""
    return "/playground" if file.name == "index.html" else f"/playground/{file.name}"


def playground_routes(target: Target) -> list[dict]:
    """Direct responses, as /docs is served: GET only, past the transcoder (which would refuse an unknown path),
    revalidated on every load so a new version of the page is never mixed with an old script."""
    routes = []
    for file in playground_files():
        headers = {"content-type": PLAYGROUND_TYPES[file.suffix], "cache-control": "no-cache",
                   "x-content-type-options": "nosniff"}
        if file.suffix == ".html":
            headers["content-security-policy"] = PLAYGROUND_POLICY
        routes.append({
            "match": {"path": playground_path(file),
                      "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "direct_response": {"status": 200, "body": {"filename": str(target.playground_dir / file.name)}},
            "response_headers_to_add": [{"header": {"key": k, "value": v}} for k, v in headers.items()],
            "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}},
        })
    return routes
