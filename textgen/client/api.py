"""A Python client for the whole system: one object over the generated stubs.

    from textgen.client import Client, TextgenError

    with Client() as client:                       # addresses from BASELINE_ADDR, ..., else loopback defaults
        print(client.generate("the", length=10).generated_text)
        answer = client.ask("Who wrote it?", context="It was written by Ada.", adapter="sft")
        job = client.train_sft(max_examples=200)
        for event in client.watch(job.job_id):
            print(event.status, event.progress.step, event.progress.total_steps)

Every call has a deadline (`timeout`, default 60 s; streams have none unless given). Calls without side effects
are retried on UNAVAILABLE by gRPC itself, through the channel's service config. Any failure is a TextgenError
carrying the gRPC code, the message and the field violations of a google.rpc.BadRequest.
"""
import collections
import dataclasses
import json
import os
import pathlib
from collections.abc import Iterator, Mapping

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from textgen.client.calls import TextgenError, call, given, streamed
from textgen.client.fine_tuning_api import FineTuningCalls
from textgen.client.training_api import TrainingCalls
from textgen.endpoints import ENDPOINTS
from textgen.v1 import (baseline_pb2, baseline_pb2_grpc, common_pb2, files_pb2, fine_tuning_pb2, llm_pb2,
                        llm_pb2_grpc, rnn_pb2, rnn_pb2_grpc, trainer_pb2)

DEFAULT_TIMEOUT_SECONDS = 60.0
# Only the calls the protos mark idempotent (`option idempotency_level`) are retried, as Envoy retries them: a
# retried TrainSft could queue a second job. Health checks are not: `health()` reports what is true now.
_RETRIED = [{"service": method.containing_service.full_name, "method": method.name}
            for module in (baseline_pb2, rnn_pb2, llm_pb2, trainer_pb2, files_pb2, fine_tuning_pb2)
            for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods
            if method.GetOptions().idempotency_level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN]
SERVICE_CONFIG = json.dumps({"methodConfig": [{
    "name": _RETRIED,
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "2s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]},
}]})


API_KEY_VARIABLE = "TEXTGEN_API_KEY"
# An address written https://host:port is reached over TLS (the gateway where Envoy terminates it), verified against
# the CA certificate TEXTGEN_CA_FILE names (PEM), else the roots gRPC trusts by default.
TLS_SCHEME = "https://"
CA_FILE_VARIABLE = "TEXTGEN_CA_FILE"


class _CallDetails(collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                           "wait_for_ready", "compression")), grpc.ClientCallDetails):
    pass


class _WithApiKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor):
    """Adds `authorization: Bearer <key>` to every call (gRPC's call credentials need a TLS channel)."""

    def __init__(self, api_key: str) -> None:
        self._metadata = ("authorization", f"Bearer {api_key}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(details.method, details.timeout, [*(details.metadata or ()), self._metadata],
                            details.credentials, details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


@dataclasses.dataclass
class ServiceHealth:
    name: str
    address: str
    status: str  # SERVING, NOT_SERVING, or the gRPC code of a failed check (UNAVAILABLE: nothing listens)


class Client(TrainingCalls, FineTuningCalls):
    def __init__(self, addresses: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 api_key: str | None = None, ca_file: str | None = None,
                 environ: Mapping[str, str] = os.environ) -> None:
        """`addresses` by service name (baseline, rnn, llm, trainer) override <NAME>_ADDR; `api_key` (default
        TEXTGEN_API_KEY) goes with every call as `authorization: Bearer <key>`, which the gateway checks where the
        addresses are the gateway's (a service's own port on loopback takes none). An address starting https:// is
        reached over TLS, verified against `ca_file` (default TEXTGEN_CA_FILE; neither: the default roots)."""
        self.addresses = {name: (addresses or {}).get(name) or endpoint.address(environ)
                          for name, endpoint in ENDPOINTS.items()}
        self.timeout = timeout
        api_key = environ.get(API_KEY_VARIABLE, "") if api_key is None else api_key
        self._interceptors = [_WithApiKey(api_key)] if api_key else []
        self.ca_file = environ.get(CA_FILE_VARIABLE, "") if ca_file is None else ca_file
        self._channels: dict[str, grpc.Channel] = {}

    def channel(self, name: str) -> grpc.Channel:
        if name not in self._channels:
            address = self.addresses[name]
            options = [("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)]
            if address.startswith(TLS_SCHEME):
                plain = grpc.secure_channel(address.removeprefix(TLS_SCHEME), self._tls(name), options=options)
            else:
                plain = grpc.insecure_channel(address, options=options)
            self._channels[name] = grpc.intercept_channel(plain, *self._interceptors)
        return self._channels[name]

    def _tls(self, name: str) -> grpc.ChannelCredentials:
        if not self.ca_file:
            return grpc.ssl_channel_credentials()
        try:
            return grpc.ssl_channel_credentials(root_certificates=pathlib.Path(self.ca_file).read_bytes())
        except OSError as error:
            raise TextgenError(grpc.StatusCode.FAILED_PRECONDITION, f"{CA_FILE_VARIABLE}={self.ca_file}: cannot read "
                               f"the CA certificate: {error.strerror}", [], name) from None

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- generation ---------------------------------------------------------------------------------------
    def generate(self, start_word: str, length: int | None = None, seed: int | None = None
                 ) -> common_pb2.GenerateResponse:
        """The bigram model: `length` words in all, the start word included."""
        request = baseline_pb2.BigramGenerateRequest(**given(start_word=start_word, length=length, seed=seed))
        return call("baseline", baseline_pb2_grpc.BigramServiceStub(self.channel("baseline")).Generate, request,
                     timeout=self.timeout)

    def generate_rnn(self, start_word: str, length: int | None = None, temperature: float | None = None,
                     seed: int | None = None) -> common_pb2.GenerateResponse:
        """The LSTM: the start text followed by `length` new words."""
        request = rnn_pb2.RnnGenerateRequest(**given(start_word=start_word, length=length, temperature=temperature,
                                                    seed=seed))
        return call("rnn", rnn_pb2_grpc.RnnServiceStub(self.channel("rnn")).Generate, request, timeout=self.timeout)

    @staticmethod
    def _llm_request(question, start_word, context, length, adapter, use_rl_model, max_new_tokens, temperature,
                     seed) -> llm_pb2.LlmGenerateRequest:
        return llm_pb2.LlmGenerateRequest(**given(question=question, start_word=start_word, context=context,
                                                 length=length, adapter=adapter, use_rl_model=use_rl_model,
                                                 max_new_tokens=max_new_tokens, temperature=temperature, seed=seed))

    def ask(self, question: str | None = None, *, context: str | None = None, start_word: str | None = None,
            length: int | None = None, adapter: str | None = None, use_rl_model: bool | None = None,
            max_new_tokens: int | None = None, temperature: float | None = None, seed: int | None = None
            ) -> llm_pb2.LlmGenerateResponse:
        """The LLM: a `question` (QA mode, from `context`) or a `start_word` to continue (text mode)."""
        request = self._llm_request(question, start_word, context, length, adapter, use_rl_model, max_new_tokens,
                                    temperature, seed)
        return call("llm", llm_pb2_grpc.LlmServiceStub(self.channel("llm")).Generate, request,
                     timeout=self.timeout)

    def stream(self, question: str | None = None, *, context: str | None = None, start_word: str | None = None,
               length: int | None = None, adapter: str | None = None, use_rl_model: bool | None = None,
               max_new_tokens: int | None = None, temperature: float | None = None, seed: int | None = None
               ) -> Iterator[llm_pb2.LlmGenerateChunk]:
        """As `ask`, chunk by chunk; the last chunk carries the whole response in `final`."""
        request = self._llm_request(question, start_word, context, length, adapter, use_rl_model, max_new_tokens,
                                    temperature, seed)
        stub = llm_pb2_grpc.LlmServiceStub(self.channel("llm"))
        return streamed("llm", stub.GenerateStream(request, timeout=self.timeout))

    # --- status -----------------------------------------------------------------------------------------------
    def health(self) -> list[ServiceHealth]:
        """Each service's gRPC health, checked with a short deadline."""
        found = []
        for name, address in self.addresses.items():
            try:
                response = health_pb2_grpc.HealthStub(self.channel(name)).Check(health_pb2.HealthCheckRequest(),
                                                                                 timeout=min(self.timeout, 3))
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            except grpc.RpcError as error:
                status = error.code().name
            found.append(ServiceHealth(name, address, status))
        return found

    def status(self) -> llm_pb2.LlmStatus:
        """The llm service: base model, adapters and versions, batching counters."""
        return call("llm", llm_pb2_grpc.LlmServiceStub(self.channel("llm")).GetStatus, llm_pb2.GetLlmStatusRequest(),
                     timeout=self.timeout)
