"""The trainer's token: calls that start, cancel, switch or delete work need `authorization: Bearer <TRAINER_TOKEN>`
when one is set; reads do not."""
import hmac

import grpc


async def require_token(context: grpc.aio.ServicerContext, token: str) -> None:
    if not token:
        return
    metadata = dict(context.invocation_metadata() or ())
    if not hmac.compare_digest(metadata.get("authorization", "").encode(), f"Bearer {token}".encode()):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                            "training and cancelling need 'authorization: Bearer <TRAINER_TOKEN>' (so do switching "
                            "and deleting adapters)")
