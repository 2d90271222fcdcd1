"""Helpers for work split across processes (``accelerate launch``): shares of a batch, global sums.

Below every recipe and evaluator, so that evaluation (``genpref.eval``) and training (``genpref.train``)
shard work the same way without importing each other. Each helper is a no-op on one process.
"""

from __future__ import annotations

import torch


def shard(indices: list[int], rank: int, num_processes: int) -> list[int]:
    """This process's contiguous share of a global micro-batch (sizes differ by at most one)."""
    per, extra = divmod(len(indices), num_processes)
    start = rank * per + min(rank, extra)
    return indices[start : start + per + (1 if rank < extra else 0)]


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum each tensor in place over all processes (nothing when torch.distributed is not initialised)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for t in tensors:
            torch.distributed.all_reduce(t)


def gather_uneven(accelerator, tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a 1-D tensor of non-negative values over processes whose lengths differ (rank order)."""
    gathered = accelerator.gather(accelerator.pad_across_processes(tensor[None], dim=1, pad_index=-1))
    return gathered.flatten()[gathered.flatten() >= 0]
