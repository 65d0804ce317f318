"""python -m services.llm — GPT-2 with LoRA adapters behind gRPC (--help lists its environment variables)."""
from services.common.server import run_service
from services.llm.config import LlmConfig
from services.llm.server import serve

run_service(LlmConfig, serve, __doc__)
