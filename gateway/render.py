"""Renders the gateway's Envoy configuration from its one source, gateway/envoy.template.yaml.

    python -m gateway.render local   --out gen/gateway               # make run: backends on loopback
    python -m gateway.render compose --out /etc/envoy                # the Envoy image: compose service names
    python -m gateway.render k8s     --out deploy/k8s/base/gateway   # Kubernetes: the envoy-config ConfigMap

Writes OUT/envoy.yaml, OUT/openapi.json, OUT/docs.html and the playground's files (OUT/playground/), and for
compose and k8s the descriptor set beside them. The targets (gateway/targets.py) differ only in addresses and file
locations; one route per REST-annotated method comes from the descriptor set (gateway/method_routes.py), the
replies Envoy makes itself from gateway/local_replies.py, the checks of a REST request before it is transcoded
from gateway/request_checks.py, the playground's routes from gateway/playground_routes.py,
the llm replicas' balancing by adapter from gateway/adapter_affinity.py. The API keys and TLS (gateway/edge.py) are
applied here for make run; compose and Kubernetes apply them where Envoy starts (the config is written as JSON,
edge.py beside it), so that no key is ever in an image or a ConfigMap.
"""
import argparse
import json
import pathlib
import shutil
import string

import yaml

from gateway import adapter_affinity, edge, openai_routes
from gateway.backends import BACKENDS
from gateway.http_rules import HttpBinding, http_bindings, load_descriptor_set
from gateway.local_replies import local_reply_mappers
from gateway.method_routes import method_routes
from gateway.openapi import openapi_document
from gateway.playground_routes import playground_files, playground_routes
from gateway.rate_limits import rate_limit_filter
from gateway.request_checks import request_checks_filter
from gateway.targets import TARGETS, Target, local_target
from textgen import openai_error_body
from textgen.paths import DESCRIPTOR_SET

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATE = HERE / "envoy.template.yaml"
DOCS_PAGE = HERE / "docs.html"


def _endpoint(address: str) -> dict:
    host, _, port = address.rpartition(":")
    return {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}


def render(target: Target, bindings: list[HttpBinding]) -> dict:
    """The Envoy bootstrap for `target` serving `bindings`, as a dict ready for yaml.safe_dump."""
    values = {
        "admin_port": target.admin_port,
        "listen_address": target.listen_address,
        "listen_port": target.listen_port,
        "max_connections": target.max_connections,
        "max_body_bytes": target.max_body_bytes,
        "descriptor": str(target.descriptor),
        "files_dir": str(target.files_dir),
        "swagger_ui_dir": str(target.swagger_ui_dir),
        "services": json.dumps([s for s in BACKENDS if s not in openai_routes.OPENAI_SHAPED]),
        "local_reply_mappers": json.dumps(local_reply_mappers()),
        "client_header": edge.CLIENT_HEADER,
        "openai_error_header": openai_error_body.HEADER,  # the trailer the llm service writes, which the Lua reads
        **{f"{name}_endpoints": json.dumps([_endpoint(a) for a in addresses])
           for name, addresses in target.endpoints.items()},
    }
    config = yaml.safe_load(string.Template(TEMPLATE.read_text()).substitute(values))
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    routes[:0] = method_routes(target, bindings) + openai_routes.rest_routes(manager["http_filters"],
                                                                             target.max_upload_bytes)
    routes += playground_routes(target)
    if target.adapter_affinity:
        adapter_affinity.apply(config, bindings)
    transcoder = next(i for i, f in enumerate(manager["http_filters"]) if f["name"] == openai_routes.TRANSCODER)
    manager["http_filters"].insert(transcoder, request_checks_filter(bindings))
    manager["http_filters"][-1:-1] = [rate_limit_filter(name, bucket) for name, bucket in target.rate_limits.items()]
    return config


def write(target: Target, out: pathlib.Path, descriptor: pathlib.Path = DESCRIPTOR_SET) -> pathlib.Path:
    """Writes out/envoy.yaml, out/openapi.json, out/docs.html and out/playground/ from the descriptor set
    protos/build.py made; returns the config's path."""
    files = load_descriptor_set(descriptor)
    bindings = http_bindings(files)
    out.mkdir(parents=True, exist_ok=True)
    (out / "openapi.json").write_text(json.dumps(openapi_document(bindings, files), indent=1))
    (out / "docs.html").write_text(DOCS_PAGE.read_text())
    (out / "playground").mkdir(exist_ok=True)
    for file in playground_files():
        shutil.copyfile(file, out / "playground" / file.name)
    if target.descriptor == target.files_dir / "descriptor.pb":  # shipped beside the config
        (out / "descriptor.pb").write_bytes(descriptor.read_bytes())
    config, rendered = out / "envoy.yaml", render(target, bindings)
    if target.edge_at_start:  # compose, Kubernetes: JSON (which YAML includes) that edge.py reads with its stdlib
        shutil.copyfile(HERE / "edge.py", out / "edge.py")
        config.write_text(json.dumps(rendered, indent=1))
        return config
    rendered = edge.apply_keys(rendered, target.api_keys)
    if target.tls:
        rendered = edge.apply_tls(rendered, *target.tls)
    config.write_text(yaml.safe_dump(rendered, sort_keys=False))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["local", *TARGETS])
    parser.add_argument("--out", type=pathlib.Path, required=True, help="folder for envoy.yaml and openapi.json")
    args = parser.parse_args()
    target = local_target(files_dir=args.out.resolve()) if args.target == "local" else TARGETS[args.target]()
    print(write(target, args.out))


if __name__ == "__main__":
    main()
