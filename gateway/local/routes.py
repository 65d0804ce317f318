"""REST routes read from the descriptor set's google.api.http rules (none is written by hand).

A path template such as /llm/jobs/{job_id}:cancel becomes a regular expression; variables bind request fields.
"""
import dataclasses
import pathlib
import re
import urllib.parse

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor

_VARIABLE = re.compile(r"\{([A-Za-z_][\w.]*)(?:=([^}]*))?\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclasses.dataclass(frozen=True)
class PathTemplate:
    template: str
    pattern: re.Pattern
    fields: tuple[str, ...]  # the field path each capture group binds, in order

    @classmethod
    def parse(cls, template: str) -> "PathTemplate":
        regex, fields, position = ["^"], [], 0
        for match in _VARIABLE.finditer(template):
            regex.append(re.escape(template[position : match.start()]))
            segments = match.group(2) or "*"
            # '*' is one path segment, '**' any number of them (google.api.http's grammar).
            regex.append("(" + "/".join("[^/]+" if s == "*" else ".+" if s == "**" else re.escape(s)
                                        for s in segments.split("/")) + ")")
            fields.append(match.group(1))
            position = match.end()
        regex.append(re.escape(template[position:]) + "$")
        return cls(template, re.compile("".join(regex)), tuple(fields))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None:
            return None
        return {field: urllib.parse.unquote(value) for field, value in zip(self.fields, found.groups())}


@dataclasses.dataclass(frozen=True)
class Route:
    http_method: str
    template: PathTemplate
    body: str  # "" (no body), "*" (the whole request message) or a field name
    method: MethodDescriptor
    request_class: type
    response_class: type

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def request_descriptor(self) -> Descriptor:
        return self.method.input_type


def _bindings(rule: http_pb2.HttpRule):
    for binding in [rule, *rule.additional_bindings]:
        pattern = binding.WhichOneof("pattern")
        if pattern in _HTTP_METHODS:
            yield pattern.upper(), getattr(binding, pattern), binding.body
        elif pattern == "custom":
            yield binding.custom.kind.upper(), binding.custom.path, binding.body


def load_descriptor_set(path: pathlib.Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def build_routes(files: descriptor_pb2.FileDescriptorSet) -> list[Route]:
    pool = descriptor_pool.DescriptorPool()
    for file_proto in files.file:
        pool.Add(file_proto)
    routes = []
    for file_proto in files.file:
        for service_proto in file_proto.service:
            service = pool.FindServiceByName(f"{file_proto.package}.{service_proto.name}")
            for method_proto in service_proto.method:
                if not method_proto.options.HasExtension(annotations_pb2.http):
                    continue
                method = service.methods_by_name[method_proto.name]
                request_class = message_factory.GetMessageClass(method.input_type)
                response_class = message_factory.GetMessageClass(method.output_type)
                for http_method, path, body in _bindings(method_proto.options.Extensions[annotations_pb2.http]):
                    routes.append(Route(http_method, PathTemplate.parse(path), body, method,
                                        request_class, response_class))
    return routes


def find_route(routes: list[Route], http_method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        if route.http_method == http_method:
            bound = route.template.match(path)
            if bound is not None:
                return route, bound
    return None
