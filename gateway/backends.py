"""What Envoy applies to each service's calls, keyed by gRPC service (where each service listens is textgen.endpoints'
table):
- how long they may run: unary calls get `timeout_seconds`, server streams `stream_timeout_seconds` (a training
  job's event stream lasts as long as the job);
- which token bucket of gateway/rate_limits.py they take from, if any: `rate_limit`. Every LLM route does (each one
  lands on the LLM replicas). The trainer's calls that start or cancel work do, its reads (what the protos mark
  NO_SIDE_EFFECTS: job listing, a job's status, its event stream) do not (`rate_limit_reads`): they are database
  lookups, and a client follows the jobs it started through them for as long as those run. The bigram and LSTM
  routes take from a bucket of their own, `small_models`, not the `llm` one: a call of theirs costs milliseconds where
  an LLM call holds a batch slot for seconds, so one shared bucket would either let a client's cheap calls spend its
  LLM budget or size the LLM limit for calls a thousand times cheaper;
- which API key scopes may call them (gateway/edge.py checks the keys): `scopes_of`.
"""
import dataclasses

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor

from gateway import openai_routes
from textgen.endpoints import ENDPOINTS, Endpoint


@dataclasses.dataclass(frozen=True)
class Backend:
    endpoint: Endpoint
    timeout_seconds: float
    stream_timeout_seconds: float
    rate_limit: str | None = None
    rate_limit_reads: bool = True
    scope: str = "generate"  # the API key scope its calls need (gateway/edge.py): generate or train
    reads_take_read_scope: bool = True  # whether a `read` key may call its GET methods too

    @property
    def name(self) -> str:
        return self.endpoint.name

    def rate_limit_of(self, method: MethodDescriptor) -> str | None:
        """The token bucket a call of `method` takes from; None: not limited."""
        reads = method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
        return None if reads and not self.rate_limit_reads else self.rate_limit


    def scopes_of(self, http_methods: set[str]) -> list[str]:
        """The API key scopes any one of which lets a key call a method of this service bound to `http_methods`:
        what is only read (bound to GET: /llm/status, /llm/jobs, /v1/models...) takes `read` or the service's own
        scope (so a `generate` key lists the models it generates with and a `train` key follows its jobs)."""
        reads = http_methods == {"GET"} and self.reads_take_read_scope
        return sorted({"read", self.scope} if reads else {self.scope})


_TIMEOUTS = {"baseline": (30, 60), "rnn": (60, 60), "llm": (300, 600), "trainer": (60, 86400)}
_RATE_LIMITS = {"llm": {"rate_limit": "llm"}, "baseline": {"rate_limit": "small_models"},
                "rnn": {"rate_limit": "small_models"},
                "trainer": {"rate_limit": "train", "rate_limit_reads": False, "scope": "train"}}
BACKENDS = {e.grpc_service: Backend(e, *_TIMEOUTS[e.name], **_RATE_LIMITS.get(e.name, {}))
            for e in ENDPOINTS.values()}
# The llm process serves the OpenAI-compatible services too (gateway/openai_routes.py): routed as LlmService is.
BACKENDS |= dict.fromkeys([*openai_routes.SERVICES, "textgen.v1.TokenizerService"],
                          BACKENDS[ENDPOINTS["llm"].grpc_service])
# The trainer process serves the adapters' management, since it publishes them.
BACKENDS["textgen.v1.AdapterService"] = BACKENDS[ENDPOINTS["trainer"].grpc_service]
# And OpenAI's files and fine-tuning jobs, every call of which takes the train scope: a key's files and jobs are its
# training data and work, not something a `read` key lists.
BACKENDS |= dict.fromkeys(openai_routes.TRAINER_SERVICES, dataclasses.replace(
    BACKENDS[ENDPOINTS["trainer"].grpc_service], reads_take_read_scope=False))
