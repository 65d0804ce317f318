"""The REST bindings the protos declare: every google.api.http rule in the descriptor set, with its gRPC method.

Envoy's transcoder reads the same rules from the same descriptor set; the renderer makes one route per method and
the OpenAPI document one operation per binding from this list, so none of them is written by hand.
"""
import dataclasses
import pathlib
import re

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import MethodDescriptor

_VARIABLE = re.compile(r"\{([A-Za-z_][\w.]*)(?:=[^}]*)?\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclasses.dataclass(frozen=True)
class HttpBinding:
    http_method: str  # "GET", "POST", ...
    path: str  # the template, e.g. /llm/jobs/{job_id}:cancel
    body: str  # "" (no body), "*" (the whole request message) or a field name
    method: MethodDescriptor

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def path_fields(self) -> tuple[str, ...]:
        """The request fields the path template binds, in order."""
        return tuple(match.group(1) for match in _VARIABLE.finditer(self.path))


def _bindings(rule: http_pb2.HttpRule):
    for binding in [rule, *rule.additional_bindings]:
        pattern = binding.WhichOneof("pattern")
        if pattern in _HTTP_METHODS:
            yield pattern.upper(), getattr(binding, pattern), binding.body
        elif pattern == "custom":
            yield binding.custom.kind.upper(), binding.custom.path, binding.body


def load_descriptor_set(path: pathlib.Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(pathlib.Path(path).read_bytes())


def http_bindings(files: descriptor_pb2.FileDescriptorSet) -> list[HttpBinding]:
    pool = descriptor_pool.DescriptorPool()
    for file_proto in files.file:
        pool.Add(file_proto)
    found = []
    for file_proto in files.file:
        for service_proto in file_proto.service:
            service = pool.FindServiceByName(f"{file_proto.package}.{service_proto.name}")
            for method_proto in service_proto.method:
                if method_proto.options.HasExtension(annotations_pb2.http):
                    rule = method_proto.options.Extensions[annotations_pb2.http]
                    found += [HttpBinding(http_method, path, body, service.methods_by_name[method_proto.name])
                              for http_method, path, body in _bindings(rule)]
    return found
