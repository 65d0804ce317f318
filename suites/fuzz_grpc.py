"""gRPC fuzzing of every service on its own port, with hypothesis: request messages built from the descriptors
with random field values (empty, huge and unicode strings, extreme and non-finite numbers), against the whole
system on loopback.

    python suites/fuzz_grpc.py            # full: 300 requests per method
    python suites/fuzz_grpc.py --quick    # CI: 25 per method

Every answer must be a proper status: OK, or a code that names the caller's problem (INVALID_ARGUMENT,
NOT_FOUND, FAILED_PRECONDITION, UNAUTHENTICATED), RESOURCE_EXHAUSTED only from a queue bound that says so, or
DEADLINE_EXCEEDED past the 30 s deadline each call gets; never UNKNOWN, INTERNAL or a transport error (a status
message too large for its header once came back as RESOURCE_EXHAUSTED); and every service still reports SERVING
afterwards. Prints the codes seen per method.
"""
import argparse
import collections
import pathlib
import sys
import tempfile

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings, strategies as st
from textgen.v1 import baseline_pb2, llm_pb2, rnn_pb2, trainer_pb2

from devtools.processes import health_status, start_system

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.DEADLINE_EXCEEDED}
QUEUE_BOUNDS = ("LLM_MAX_QUEUED", "TRAINER_MAX_QUEUED")
SERVICES = {"baseline": baseline_pb2, "rnn": rnn_pb2, "llm": llm_pb2, "trainer": trainer_pb2}
SKIPPED = {"TrainSft", "TrainRl"}  # real jobs: the REST fuzzer and the trainer tests cover their validation
STRINGS = st.one_of(st.text(max_size=40), st.text(min_size=2000, max_size=5000), st.just(""),
                    st.sampled_from(["the", "base", "sft", "rl", "ｔｈｅ 船", "\u0000", "../../etc/passwd", " " * 50]))
INTS = {32: st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-3, 600)),
        64: st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-3, 600))}
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1, 3))


def message_strategy(descriptor, depth: int = 0):
    """Messages of `descriptor`'s type, each field set or left unset at random."""
    fields = {}
    for field in descriptor.fields:
        if field.message_type is not None:
            if depth > 1 or field.message_type.full_name.startswith("google.protobuf"):
                continue
            value = message_strategy(field.message_type, depth + 1)
        elif field.type == FieldDescriptor.TYPE_STRING:
            value = STRINGS
        elif field.type == FieldDescriptor.TYPE_BOOL:
            value = st.booleans()
        elif field.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
            value = FLOATS
        else:
            value = INTS[64 if field.cpp_type in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
                         else 32]
        fields[field.name] = st.one_of(st.none(), value)
    cls = GetMessageClass(descriptor)
    return st.fixed_dictionaries(fields).map(lambda values: cls(**{k: v for k, v in values.items() if v is not None}))


def fuzz_method(channel, method, examples: int, token: str, seen: collections.Counter) -> list[str]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    make = channel.unary_stream if method.server_streaming else channel.unary_unary
    call = make(path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b)
    problems = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(message_strategy(method.input_type))
    def run(request):
        try:
            response = call(request, timeout=30, metadata=[("authorization", f"Bearer {token}")])
            if method.server_streaming:
                for _ in response:
                    pass
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            queue_full = code == grpc.StatusCode.RESOURCE_EXHAUSTED and any(
                bound in (error.details() or "") for bound in QUEUE_BOUNDS)
            if code not in ALLOWED and not queue_full:
                problems.append(f"{path}: {code.name} {error.details()!r} for {request!r:.300}")
        seen[code.name] += 1

    run()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI size: 25 requests per method")
    args = parser.parse_args()
    examples = 25 if args.quick else 300
    problems, report = [], {}
    with tempfile.TemporaryDirectory(prefix="fuzz-grpc-") as tmp, \
            start_system(pathlib.Path(tmp) / "models", LLM_MAX_QUEUED="4") as system:
        for name, module in SERVICES.items():
            with grpc.insecure_channel(system.address(name)) as channel:
                for service in module.DESCRIPTOR.services_by_name.values():
                    for method in service.methods:
                        if method.name in SKIPPED:
                            continue
                        seen = collections.Counter()
                        problems += fuzz_method(channel, method, examples, system.token, seen)
                        report[f"{service.name}/{method.name}"] = seen
        unhealthy = [name for name in SERVICES
                     if health_status(system.address(name)) != health_pb2.HealthCheckResponse.SERVING]
    for method, seen in report.items():
        print(f"{method:32} " + ", ".join(f"{code} {count}" for code, count in seen.most_common()))
    print(f"requests: {sum(sum(s.values()) for s in report.values())}; improper statuses: {len(problems)}; "
          f"services not SERVING afterwards: {unhealthy or 'none'}")
    for line in problems[:20]:
        print("  " + line)
    return 0 if not problems and not unhealthy else 1


if __name__ == "__main__":
    sys.exit(main())
