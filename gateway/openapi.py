"""The OpenAPI 3 document Envoy serves at /openapi.json, generated from the descriptor set: one operation per
google.api.http binding, proto comments as descriptions, `google.api.field_behavior = REQUIRED` as `required`.

    python -m gateway.openapi > openapi.json
"""
import json
import pathlib
import sys

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway import openai_routes, request_checks
from gateway.backends import BACKENDS
from gateway.http_rules import HttpBinding, http_bindings, load_descriptor_set
from gateway.proto_comments import collect_comments, stated_bounds, stated_default_value
from textgen.paths import DESCRIPTOR_SET

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64"},
    # proto3 JSON prints 64-bit integers as strings and accepts both.
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
}
# What Envoy's transcoder really sends for a server stream with stream_newline_delimited.
STREAM_DESCRIPTION = ("A stream: one JSON object of this schema per line, sent as application/json. The last object "
                      "says it is the last (an LLM chunk with `final`, a job event with a finished status); a stream "
                      "that ends without it was cut short, e.g. by its deadline.")
# The OpenAI paths' streams (gateway/openai_routes.py): the same path and body as the unary method, "stream": true.
SSE_DESCRIPTION = ('With "stream": true, server-sent events, `data: {...}` each, of this schema; the stream ends '
                   'without `data: [DONE]`, and an error after its start is a last event with `error` set.')
# A method whose request or response is google.api.HttpBody takes or gives the raw body, not JSON. The one such
# request is an upload (POST /v1/files): a form with the file and its purpose.
HTTP_BODY = "google.api.HttpBody"
UPLOAD_FORM = {"type": "object", "required": ["file", "purpose"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "JSONL, one chat example a line"},
    "purpose": {"type": "string", "enum": ["fine-tune"]}}}
RAW_BODY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status",
    "properties": {
        "code": {"type": "integer", "description": "the gRPC status code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}

OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "description": "OpenAI's error body, as every error on the OpenAI paths is (textgen/openai_error_body.py)",
    "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": "string", "nullable": True},
        "code": {"type": "string", "nullable": True}}}},
}
ERRORS = {name: {"description": f"an error ({description})", "content": {"application/json": {
    "schema": {"$ref": f"#/components/schemas/{name}"}}}}
    for name, description in (("Status", "google.rpc.Status"), ("OpenAiError", "OpenAI's error body"))}


def is_required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in field.GetOptions().Extensions[field_behavior_pb2.field_behavior]


class _Schemas:
    def __init__(self, comments: dict[str, str]) -> None:
        self.components: dict[str, dict] = {}
        self.comments = comments

    def field(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                return {"type": "object", "additionalProperties": self.field(field.message_type.fields_by_name["value"])}
            schema = self.ref(field.message_type)
        elif field.enum_type is not None:
            schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        else:
            schema = dict(_SCALARS[field.type])
        if field.is_repeated:
            schema = {"type": "array", "items": schema}
        description = self.comments.get(field.full_name)
        if not description or "$ref" in schema:
            return schema
        return {**schema, "description": description, **self.stated(description)}

    @staticmethod
    def stated(description: str) -> dict:
        """The default and range a field's comment states, for clients that build forms from this document (the
        playground). As extensions, not JSON Schema's `default` and `minimum`: schemathesis (suites/fuzz_rest.py)
        would send those defaults as examples, queueing real training jobs, and change what it fuzzes."""
        stated = {}
        if (default := stated_default_value(description)) is not None:
            stated["x-default"] = default
        if bounds := stated_bounds(description):
            stated["x-range"] = bounds
        return stated

    def ref(self, message: Descriptor, skip: frozenset[str] = frozenset()) -> dict:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        name = message.full_name + ("" if not skip else "Body")
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion stops here
            fields = [f for f in message.fields if f.name not in skip]
            self.components[name] = {
                "type": "object",
                "description": self.comments.get(message.full_name, ""),
                "properties": {f.name: self.field(f) for f in fields},
            }
            required = [f.name for f in fields if is_required(f)]
            if required:
                self.components[name]["required"] = required
        return {"$ref": f"#/components/schemas/{name}"}


def _success(method, schemas: _Schemas) -> dict:
    if method.output_type.full_name == HTTP_BODY:
        return {"description": "the content itself, as it was stored", "content": RAW_BODY}
    return {"description": "the response" if not method.server_streaming else STREAM_DESCRIPTION,
            "content": {"application/json": {"schema": schemas.ref(method.output_type)}}}


# Swagger UI's Authorize button; the scheme the gateway checks where API keys are on (gateway/edge.py).
API_KEY_SCHEME = {"type": "http", "scheme": "bearer", "description": (
    "An API key, where the gateway checks them (API_KEYS_FILE; always in compose and Kubernetes), with one of the "
    "scopes the operation's x-scopes lists; make run without keys takes any or none.")}


def openapi_document(bindings: list[HttpBinding], files: descriptor_pb2.FileDescriptorSet) -> dict:
    schemas = _Schemas(collect_comments(files))
    refusing_unknown_fields = request_checks.checked_paths(bindings)
    paths: dict[str, dict] = {}
    http_methods: dict[str, set[str]] = {}  # by gRPC path: every REST binding of the method
    for binding in bindings:
        http_methods.setdefault(binding.grpc_path, set()).add(binding.http_method)
    for binding in bindings:
        method, path_fields = binding.method, binding.path_fields
        if method.containing_service.full_name in openai_routes.STREAMS:
            twin = paths[binding.path][binding.http_method.lower()]  # the unary twin's, listed first
            twin["responses"]["200"]["description"] += f". {SSE_DESCRIPTION}"
            twin["responses"]["200"]["content"]["text/event-stream"] = {
                "schema": schemas.ref(method.output_type)}
            continue
        operation = {
            "operationId": f"{method.containing_service.name}_{method.name}"
                           + ("" if binding.path not in paths else "_alt"),
            "tags": [method.containing_service.name],
            "summary": schemas.comments.get(method.full_name, method.name),
            "x-scopes": BACKENDS[method.containing_service.full_name].scopes_of(http_methods[binding.grpc_path]),
            "parameters": [{"name": f, "in": "path", "required": True, "schema": {"type": "string"}}
                           for f in path_fields],
            "responses": {
                "200": _success(method, schemas),
                "default": ERRORS["OpenAiError" if method.containing_service.full_name in openai_routes.OPENAI_SHAPED
                                  else "Status"],
            },
        }
        if method.input_type.full_name == HTTP_BODY:
            operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": UPLOAD_FORM}}}
        elif binding.body == "*":
            body = schemas.ref(method.input_type, frozenset(path_fields))
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            if binding.path in refusing_unknown_fields:  # the gateway's request checks
                schemas.components[body["$ref"].rpartition("/")[2]]["additionalProperties"] = False
        elif not binding.body:
            operation["parameters"] += [
                {"name": f.name, "in": "query", "schema": schemas.field(f)}
                for f in method.input_type.fields if f.name not in path_fields and f.message_type is None
            ]
        paths.setdefault(binding.path, {})[binding.http_method.lower()] = operation
    schemas.components.update({"Status": STATUS_SCHEMA, "OpenAiError": OPENAI_ERROR_SCHEMA})
    return {
        "openapi": "3.0.3",
        "info": {"title": "textgen", "version": "v1",
                 "description": "Text generation and LLM post-training, generated from protos/textgen/v1."},
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": {"apiKey": API_KEY_SCHEME}},
        "security": [{"apiKey": []}],
    }


if __name__ == "__main__":
    descriptor = load_descriptor_set(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DESCRIPTOR_SET)
    json.dump(openapi_document(http_bindings(descriptor), descriptor), sys.stdout, indent=1)
