"""python -m gateway.local — the REST gateway on GATEWAY_PORT (8080) in front of the gRPC services."""
import uvicorn

from gateway.local.app import create_app
from gateway.local.config import GatewayConfig
from services.common.logs import setup_logging

config = GatewayConfig.from_env()
setup_logging(config.log_level)
uvicorn.run(create_app(config), host=config.host, port=config.port, log_config=None, access_log=False)
