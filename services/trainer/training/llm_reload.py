"""Telling the llm service to reload its adapters after a publish, a switch or a deletion. Light: the trainer's gRPC
server imports it without torch."""
import logging

log = logging.getLogger("textgen.trainer")

RELOAD_TIMEOUT_SECONDS = 10


def notify_llm(llm_addr: str) -> bool:
    """Best effort: the llm service also notices a moved CURRENT pointer on its own."""
    import grpc
    from textgen.v1 import llm_pb2, llm_pb2_grpc

    try:
        with grpc.insecure_channel(llm_addr) as channel:
            llm_pb2_grpc.LlmServiceStub(channel).ReloadAdapters(llm_pb2.ReloadAdaptersRequest(),
                                                                 timeout=RELOAD_TIMEOUT_SECONDS)
        log.info("llm service reloaded its adapters", extra={"llm_addr": llm_addr})
        return True
    except grpc.RpcError as error:
        log.warning("llm service not told to reload; it will notice the new CURRENT pointer itself",
                    extra={"llm_addr": llm_addr, "code": error.code().name, "details": error.details()})
        return False
