"""Data-parallel training: TRAINER_PROCESSES processes train one job together. transformers' Trainer (under
trl's SFT and GRPO trainers) sees the torch.distributed environment each process gets and trains with DDP: gloo on
CPUs, NCCL on GPUs; each process takes its share of every batch.

On one machine the job's worker starts the processes itself (`spawn`); each dies with the worker, as the worker
dies with the trainer. Across machines, run the training command under torchrun on each, e.g.
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-endpoint HOST:29500 -m services.trainer.commands sft ...
Process 0 (`is_main`) is the one that writes: the staging folder, progress, curves, evaluation, publishing.
"""
import os
import pathlib
import socket
from typing import Callable

from services.common import adapters
from services.common.lifetime import die_with_parent


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def staging_on_main(models_dir: pathlib.Path, name: str,
                    on_staged: Callable[[pathlib.Path], None]) -> pathlib.Path | None:
    """The folder the new `name` adapter is written into before publishing, in the first process, which alone
    writes; None in the others."""
    if not is_main():
        return None
    staged = adapters.staging_dir(models_dir, name)
    on_staged(staged)
    return staged


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(local_rank: int, world_size: int, port: int, parent: int, function, args) -> None:
    die_with_parent(parent)
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    function(*args)


def spawn(processes: int, function, args: tuple) -> None:
    """Runs `function(*args)` in `processes` processes on this machine, set up as one torch.distributed group;
    returns when all have, raises when one fails."""
    import torch.multiprocessing

    torch.multiprocessing.spawn(_entry, args=(processes, _free_port(), os.getpid(), function, args),
                                nprocs=processes, join=True)
