"""Generate the Python stubs and the descriptor set from protos/ (never edit the output by hand).

    python protos/build.py            # regenerate when a .proto is newer than the output
    python protos/build.py --force    # regenerate regardless

Writes textgen/v1/*_pb2*.py (the `textgen` package's generated part, not committed) and gen/descriptor.pb.
The descriptor set holds every import
(--include_imports) and google.rpc's Status and error details: Envoy's transcoder turns a service's error into a
JSON body only when it knows every detail type in it; otherwise the client gets the HTTP code and an empty body.
"""
import argparse
import pathlib
import sys

import google.api.annotations_pb2
import grpc_tools
from grpc_tools import protoc

from textgen.paths import DESCRIPTOR_SET, PROTOS, ROOT, STUBS

# protoc names modules after the .proto paths: textgen/v1/llm.proto becomes the module textgen.v1.llm_pb2.
PYTHON_OUT = ROOT
ERROR_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto"]


def proto_files() -> list[pathlib.Path]:
    return sorted(PROTOS.rglob("*.proto"))


def is_fresh() -> bool:
    if not DESCRIPTOR_SET.exists() or not (STUBS / "__init__.py").exists():
        return False
    newest_source = max(p.stat().st_mtime for p in proto_files() + [pathlib.Path(__file__)])
    return DESCRIPTOR_SET.stat().st_mtime >= newest_source


def build() -> None:
    # googleapis-common-protos ships google/api/*.proto beside its _pb2 modules; grpc_tools ships google/protobuf.
    googleapis_include = pathlib.Path(google.api.annotations_pb2.__file__).parent.parent.parent
    well_known_include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    DESCRIPTOR_SET.parent.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{PROTOS}", f"-I{googleapis_include}", f"-I{well_known_include}"]
    ours = [str(p.relative_to(PROTOS)) for p in proto_files()]
    stubs = [f"--python_out={PYTHON_OUT}", f"--pyi_out={PYTHON_OUT}", f"--grpc_python_out={PYTHON_OUT}", *ours]
    # A second run, for the descriptor only: google/rpc's Python modules come from googleapis-common-protos.
    descriptor = [f"--descriptor_set_out={DESCRIPTOR_SET}", "--include_imports", "--include_source_info",
                  *ours, *ERROR_PROTOS]
    for args in (stubs, descriptor):
        if protoc.main(["protoc", *includes, *args]) != 0:
            sys.exit("protoc failed; see the messages above")
    (STUBS / "__init__.py").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate even when the output is fresh")
    if parser.parse_args().force or not is_fresh():
        build()
        print(f"generated {DESCRIPTOR_SET.relative_to(ROOT)} and the stubs in {STUBS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
