"""Which backend serves each gRPC service: one table for the local gateway, envoy.yaml's check and compose.

`name` is the docker-compose service and the Envoy cluster; `timeout_seconds` bounds unary calls through the gateway
(streams get `stream_timeout_seconds`: a training job's event stream lasts as long as the job).
"""
import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    address_variable: str
    default_address: str
    timeout_seconds: float
    stream_timeout_seconds: float

    def address(self) -> str:
        return os.environ.get(self.address_variable, self.default_address)


BACKENDS = {
    "textgen.v1.BigramService": Backend("baseline", "BASELINE_ADDR", "localhost:50051", 30, 60),
    "textgen.v1.RnnService": Backend("rnn", "RNN_ADDR", "localhost:50052", 60, 60),
    "textgen.v1.LlmService": Backend("llm", "LLM_ADDR", "localhost:50053", 300, 600),
    "textgen.v1.TrainerService": Backend("trainer", "TRAINER_ADDR", "localhost:50054", 60, 86400),
}
