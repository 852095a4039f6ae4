"""Running a stage under torchrun: one process per rank, PyTorch's own distributed engine.

`torchrun --nproc_per_node N stage.py ...` (and multi-node with `--nnodes/--rdzv-*`) sets RANK,
WORLD_SIZE, LOCAL_RANK and the rendezvous address in the environment; `start` joins the process
group from them (gloo on CPU, nccl on CUDA) and gives each process its device. Without torchrun
(WORLD_SIZE unset or 1) nothing is initialised and the stage runs as one process.
"""
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from common.io import PipelineError

# how long a collective waits for a peer before failing: long enough for a slow first step, short
# enough that a dead peer ends the others within a minute
TIMEOUT = timedelta(seconds=60)


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device); joins the process group when under torchrun."""
    if not launched():
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    try:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    except (RuntimeError, ValueError) as e:
        raise PipelineError(f"torchrun: could not join the process group ({' '.join(str(e).split())[:160]})") from None
    return dist.get_rank(), dist.get_world_size(), device


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_peer_failure(error: BaseException) -> bool:
    """Whether an error raised inside a collective means another process of the job stopped."""
    text = str(error).lower()
    return dist.is_initialized() and any(s in text for s in (
        "connection closed", "connection reset", "broken pipe", "timed out", "timeout", "gloo", "nccl", "peer"))
