"""What Envoy checks of a REST request before transcoding it (gateway/request_checks.lua): the headers gRPC metadata
cannot carry are dropped and a grpc-timeout it cannot read is refused; on OpenAI's JSON paths a body field the
request message does not have is refused, as OpenAI refuses one. Envoy has neither check of its own: its transcoder
drops unknown JSON fields without a word (envoyproxy/envoy#46623), and it forwards any header HTTP allows."""
import json
import pathlib

from gateway import openai_routes
from gateway.http_rules import HttpBinding

FILTER = "textgen.request_checks"
SCRIPT = pathlib.Path(__file__).with_name("request_checks.lua")
PLACEHOLDER = "local FIELDS = {} -- FIELDS"
UPLOAD_BODY = "google.api.HttpBody"


def checked_paths(bindings: list[HttpBinding]) -> dict[str, list[str]]:
    """OpenAI's JSON paths (POST, the whole body the request message, no path variables; an upload's body is no
    JSON) and the top-level fields each takes, by their proto names and their JSON names (the transcoder reads
    both)."""
    paths = {}
    for binding in bindings:
        if (binding.http_method == "POST" and binding.body == "*" and not binding.path_fields
                and binding.path.startswith(openai_routes.PREFIX + "/")
                and binding.method.input_type.full_name != UPLOAD_BODY):
            fields = binding.method.input_type.fields
            paths[binding.path] = sorted({name for field in fields for name in (field.name, field.json_name)})
    return paths


def lua_table(paths: dict[str, list[str]]) -> str:
    """The paths as a Lua table of sets (JSON's string literals are Lua's for these ASCII names)."""
    entries = ", ".join(f"[{json.dumps(path)}] = {{{', '.join(f'[{json.dumps(f)}] = true' for f in fields)}}}"
                        for path, fields in sorted(paths.items()))
    return f"local FIELDS = {{{entries}}}"


def request_checks_filter(bindings: list[HttpBinding]) -> dict:
    """The Lua filter that runs the checks, for the HTTP filter chain just before the transcoder."""
    source = SCRIPT.read_text()
    if PLACEHOLDER not in source:
        raise RuntimeError(f"{SCRIPT} lost its line {PLACEHOLDER!r}, where the fields are rendered")
    source = source.replace(PLACEHOLDER, lua_table(checked_paths(bindings)))
    return {"name": FILTER, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": source}}}
