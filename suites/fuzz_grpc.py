"""gRPC fuzzing of every service on its own port, with hypothesis: request messages built from the descriptors
with random field values (empty, huge and unicode strings, extreme and non-finite numbers, lists, JSON values),
against the whole system on loopback. The OpenAI-compatible services and TokenizerService get values that reach
their engine too, and their OK answers are checked against the contract (suites/openai_answers.py).

    python suites/fuzz_grpc.py            # full: 300 requests per method (900 on the OpenAI services)
    python suites/fuzz_grpc.py --quick    # CI: 25 per method (75)

Every answer must be a proper status: OK, or a code that names the caller's problem (INVALID_ARGUMENT,
NOT_FOUND, FAILED_PRECONDITION, UNAUTHENTICATED), RESOURCE_EXHAUSTED only from a queue bound that says so, or
DEADLINE_EXCEEDED past the 30 s deadline each call gets; never UNKNOWN, INTERNAL or a transport error (a status
message too large for its header once came back as RESOURCE_EXHAUSTED). Every error names its problem: a message,
and for INVALID_ARGUMENT one that names a field of the request; on the OpenAI services also OpenAI's error body in
its trailer, with the field as `param`. Afterwards every service still reports SERVING and the OpenAI services
still answer. Prints the codes seen per method.
"""
import argparse
import collections
import json
import pathlib
import re
import sys
import tempfile

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings, strategies as st
from textgen.v1 import adapters_pb2, baseline_pb2, files_pb2, fine_tuning_pb2, llm_pb2, openai_pb2, \
    responses_pb2, rnn_pb2, trainer_pb2

import openai_answers
import openai_fuzzing
from devtools.processes import health_status, start_system
from textgen.openai_error_body import HEADER as OPENAI_ERROR_HEADER, SERVICES as OPENAI_SHAPED

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.DEADLINE_EXCEEDED}
QUEUE_BOUNDS = ("LLM_MAX_QUEUED", "TRAINER_MAX_QUEUED")
# Each process and the contracts of what it serves.
SERVICES = {"baseline": [baseline_pb2], "rnn": [rnn_pb2], "llm": [llm_pb2, openai_pb2, responses_pb2],
            "trainer": [trainer_pb2, adapters_pb2, files_pb2, fine_tuning_pb2]}
SKIPPED = {"TrainSft", "TrainRl"}  # real jobs: the REST fuzzer and the trainer tests cover their validation
OPENAI_SERVICES = set(OPENAI_SHAPED)
# An upload's request is a raw body (HttpBody messages, sent here one at a time): its fields are the form's.
FORM_FIELDS = {"textgen.v1.FileService.CreateFile": {"file", "purpose"}}
OPENAI_EXAMPLES = 3  # times the examples for the OpenAI services and TokenizerService: they have the most fields
STRINGS = st.one_of(st.text(max_size=40), st.text(min_size=2000, max_size=5000), st.just(""),
                    st.sampled_from(["the", "base", "sft", "rl", "ｔｈｅ 船", "\u0000", "../../etc/passwd", " " * 50]))
INTS = {32: st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-3, 600)),
        64: st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-3, 600))}
UINTS = {32: st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 600)),
         64: st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 600))}
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1, 3))
WELL_KNOWN = {"google.protobuf.Value": openai_fuzzing.JSON.map(openai_fuzzing.as_value),
              "google.protobuf.Struct": st.dictionaries(st.text(max_size=8), openai_fuzzing.JSON, max_size=4).map(
                  openai_fuzzing.as_struct)}


def scalar_strategy(field):
    if field.type == FieldDescriptor.TYPE_STRING:
        return STRINGS
    if field.type == FieldDescriptor.TYPE_BYTES:  # an upload's raw body: junk, and a form's pieces
        return st.one_of(st.binary(max_size=200), st.just(b'--b\r\nContent-Disposition: form-data; name="file"\r\n'
                                                           b'\r\n{"messages": []}\r\n--b--\r\n'))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return FLOATS
    bits = 64 if field.cpp_type in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64) else 32
    unsigned = field.cpp_type in (FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64)
    return (UINTS if unsigned else INTS)[bits]


def message_strategy(descriptor, depth: int = 0, reaching: bool = False):
    """Messages of `descriptor`'s type, each field set or left unset at random (`reaching`: in range, where
    openai_fuzzing knows the range)."""
    fields = {}
    for field in descriptor.fields:
        override = openai_fuzzing.field_strategy(field, reaching)
        value = override
        if value is None and field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, item = (scalar_strategy(field.message_type.fields_by_name[name]) for name in ("key", "value"))
            fields[field.name] = st.one_of(st.none(), st.dictionaries(key, item, max_size=20))
            continue
        if value is None and field.message_type is not None:
            if field.message_type.full_name in WELL_KNOWN:
                value = WELL_KNOWN[field.message_type.full_name]
            elif depth > 1 or field.message_type.full_name.startswith("google.protobuf"):
                continue
            else:
                value = message_strategy(field.message_type, depth + 1, reaching)
        if value is None:
            value = scalar_strategy(field)
            if field.is_repeated:
                value = st.lists(value, max_size=4)
        elif field.is_repeated and field.message_type is not None and override is None:
            value = st.lists(value, max_size=3)
        fields[field.name] = st.one_of(st.none(), value)
    cls = GetMessageClass(descriptor)
    return st.fixed_dictionaries(fields).map(lambda values: cls(**{k: v for k, v in values.items() if v is not None}))


def request_strategy(method):
    """The method's requests: messages, half of them (on the OpenAI services) in range, and for some methods also
    wire bytes no message of the type can hold."""
    messages = message_strategy(method.input_type)
    if method.input_type.file.name == openai_fuzzing.OPENAI_FILE:
        messages = st.one_of(messages, message_strategy(method.input_type, reaching=True).map(
            lambda request: openai_fuzzing.reaching(method, request)))
    extra = openai_fuzzing.EXTRA_REQUESTS.get(method.full_name)
    return messages if extra is None else st.one_of(messages, messages.flatmap(extra))


def field_names(descriptor, seen=None) -> set[str]:
    """Every field name of `descriptor`'s type and of the messages it holds."""
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return set()
    seen.add(descriptor.full_name)
    names = {field.name for field in descriptor.fields}
    for field in descriptor.fields:
        if field.message_type is not None and not field.message_type.full_name.startswith("google.protobuf"):
            names |= field_names(field.message_type, seen)
    return names


def error_problems(method, error: grpc.RpcError) -> list[str]:
    """What is wrong with how an error names its problem (nothing: it names it)."""
    details, code = error.details() or "", error.code()
    if not details.strip():
        return ["an error without a message"]
    problems = []
    fields = FORM_FIELDS.get(method.full_name) or field_names(method.input_type)
    if code == grpc.StatusCode.INVALID_ARGUMENT and not any(
            re.search(rf"\b{re.escape(name)}\b", details) for name in fields):
        problems.append("INVALID_ARGUMENT that names no field of the request")
    if method.containing_service.full_name in OPENAI_SERVICES and code != grpc.StatusCode.DEADLINE_EXCEEDED:
        trailer = dict(error.trailing_metadata() or ()).get(OPENAI_ERROR_HEADER)
        body = json.loads(trailer)["error"] if trailer else None
        if body is None or not body.get("message"):
            problems.append(f"no OpenAI error body in the {OPENAI_ERROR_HEADER} trailer")
        elif code == grpc.StatusCode.INVALID_ARGUMENT and not (body.get("param") or "").split(".")[0].split("[")[0] \
                in (FORM_FIELDS.get(method.full_name) or {field.name for field in method.input_type.fields}):
            problems.append(f"OpenAI error body whose param {body.get('param')!r} is no field of the request")
    return problems


def answer_problems(method, request, answers: list[bytes]) -> list[str]:
    """What is wrong with an OK answer (only the OpenAI services' answers are checked beyond their status)."""
    if isinstance(request, bytes) or method.containing_service.full_name not in openai_fuzzing.SERVICES:
        return []
    if method.server_streaming:
        allowed = {code.name.lower() for code in ALLOWED | {grpc.StatusCode.RESOURCE_EXHAUSTED}}
        return openai_answers.stream_problems(method.name, request, answers, allowed)
    return openai_answers.unary_problems(method.name, request, answers[0])


def fuzz_method(channel, method, examples: int, token: str, seen: collections.Counter) -> list[str]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    make = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary}[(method.client_streaming, method.server_streaming)]
    sent = make(path, request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                response_deserializer=lambda b: b)
    call = (lambda request, **options: sent(iter([request]), **options)) if method.client_streaming else sent
    problems = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(request_strategy(method))
    def run(request):
        found = []
        try:
            response = call(request, timeout=30, metadata=[("authorization", f"Bearer {token}")])
            found = answer_problems(method, request, list(response) if method.server_streaming else [response])
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            queue_full = code == grpc.StatusCode.RESOURCE_EXHAUSTED and any(
                bound in (error.details() or "") for bound in QUEUE_BOUNDS)
            if code not in ALLOWED and not queue_full:
                found.append(f"{code.name} {error.details()!r:.300}")
            elif code != grpc.StatusCode.DEADLINE_EXCEEDED:
                found += [f"{problem}: {code.name} {error.details()!r:.300}" for problem in error_problems(
                    method, error)]
        problems.extend(f"{path}: {problem} for {request!r:.600}" for problem in found)
        seen[code.name] += 1

    run()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="the CI size: 25 requests per method (75 on the OpenAI services)")
    args = parser.parse_args()
    examples = 25 if args.quick else 300
    problems, report = [], {}
    metadata = [("authorization", "Bearer suite-token")]
    with tempfile.TemporaryDirectory(prefix="fuzz-grpc-") as tmp, \
            start_system(pathlib.Path(tmp) / "models", LLM_MAX_QUEUED="4") as system:
        for name, modules in SERVICES.items():
            with grpc.insecure_channel(system.address(name)) as channel:
                for service in (s for module in modules for s in module.DESCRIPTOR.services_by_name.values()):
                    for method in service.methods:
                        if method.name in SKIPPED:
                            continue
                        seen = collections.Counter()
                        times = OPENAI_EXAMPLES if service.full_name in openai_fuzzing.SERVICES else 1
                        problems += fuzz_method(channel, method, examples * times, system.token, seen)
                        report[f"{service.name}/{method.name}"] = seen
        with grpc.insecure_channel(system.address("llm")) as channel:
            problems += openai_answers.still_answers(channel, metadata)
        unhealthy = [name for name in SERVICES
                     if health_status(system.address(name)) != health_pb2.HealthCheckResponse.SERVING]
        llm_log = system.services["llm"].logs()
        tracebacks = llm_log.count("Traceback")
    for method, seen in report.items():
        print(f"{method:40} " + ", ".join(f"{code} {count}" for code, count in seen.most_common()))
    print(f"requests: {sum(sum(s.values()) for s in report.values())}; improper statuses or answers: "
          f"{len(problems)}; services not SERVING afterwards: {unhealthy or 'none'}; tracebacks in the llm log: "
          f"{tracebacks}")
    for line in problems[:20]:
        print("  " + line)
    if tracebacks:  # the first one, as the log has it
        start = llm_log.index("Traceback")
        print(llm_log[max(0, llm_log.rfind("\n", 0, start - 300)):start + 3000])
    return 0 if not problems and not unhealthy else 1


if __name__ == "__main__":
    sys.exit(main())
