"""An OpenAPI 3 document generated from the routes and their message descriptors (comments become descriptions)."""
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.local.routes import Route

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
# Field numbers in descriptor.proto, as SourceCodeInfo paths use them.
MESSAGE_TYPE, SERVICE, MESSAGE_FIELD, SERVICE_METHOD = 4, 6, 2, 2
STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status",
    "properties": {
        "code": {"type": "integer", "description": "the gRPC status code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}


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
        return {**schema, "description": description} if description and "$ref" not in schema else schema

    def ref(self, message: Descriptor, skip: frozenset[str] = frozenset()) -> dict:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        name = message.full_name + ("" if not skip else "Body")
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursion stops here
            self.components[name] = {
                "type": "object",
                "description": self.comments.get(message.full_name, ""),
                "properties": {f.name: self.field(f) for f in message.fields if f.name not in skip},
            }
        return {"$ref": f"#/components/schemas/{name}"}


def _collect_comments(files: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """full name -> leading comment, for every message, field and method (protoc's --include_source_info)."""
    comments: dict[str, str] = {}
    for file in files.file:
        for location in file.source_code_info.location:
            text, path = " ".join(location.leading_comments.split()), list(location.path)
            if not text or len(path) < 2:
                continue
            if path[0] == MESSAGE_TYPE:
                message = file.message_type[path[1]]
                name = f"{file.package}.{message.name}"
                if len(path) == 2:
                    comments[name] = text
                elif len(path) == 4 and path[2] == MESSAGE_FIELD:
                    comments[f"{name}.{message.field[path[3]].name}"] = text
            elif path[0] == SERVICE and len(path) == 4 and path[2] == SERVICE_METHOD:
                service = file.service[path[1]]
                comments[f"{file.package}.{service.name}.{service.method[path[3]].name}"] = text
    return comments


def openapi_document(routes: list[Route], files: descriptor_pb2.FileDescriptorSet) -> dict:
    schemas = _Schemas(_collect_comments(files))
    paths: dict[str, dict] = {}
    for route in routes:
        path_fields = set(route.template.fields)
        operation = {
            "operationId": f"{route.method.containing_service.name}_{route.method.name}"
                           + ("" if route.template.template not in paths else "_alt"),
            "tags": [route.method.containing_service.name],
            "summary": schemas.comments.get(route.method.full_name, route.method.name),
            "parameters": [{"name": f, "in": "path", "required": True, "schema": {"type": "string"}}
                           for f in route.template.fields],
            "responses": {
                "200": {"content": {"application/x-ndjson" if route.server_streaming else "application/json": {
                    "schema": schemas.ref(route.method.output_type)}}},
                "default": {"description": "an error (google.rpc.Status)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
            },
        }
        if route.body == "*":
            operation["requestBody"] = {"content": {"application/json": {
                "schema": schemas.ref(route.request_descriptor, frozenset(path_fields))}}}
        elif not route.body:
            operation["parameters"] += [
                {"name": f.name, "in": "query", "schema": schemas.field(f)}
                for f in route.request_descriptor.fields if f.name not in path_fields
                and f.message_type is None
            ]
        paths.setdefault(route.template.template, {})[route.http_method.lower()] = operation
    schemas.components["Status"] = STATUS_SCHEMA
    return {
        "openapi": "3.0.3",
        "info": {"title": "textgen", "version": "v1",
                 "description": "Text generation and LLM post-training, generated from protos/textgen/v1."},
        "paths": paths,
        "components": {"schemas": schemas.components},
    }
