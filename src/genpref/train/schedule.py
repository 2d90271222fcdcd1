"""Deterministic data order and optimizer set-up shared by the training recipes.

The whole run is planned up front as a list of optimizer steps, each a list of micro-batches of
global example indices. The plan depends only on (n, seed, batch sizes, epochs, optional groups), never on the
process count's RNG, so resuming at step s replays exactly steps s, s+1, ... and N processes with
per-process batch b see the same global batches as 1 process with batch N·b.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import torch
from torch import nn

from genpref.train.config import OptimConfig, TrainConfig


def plan_steps(
    n_examples: int,
    train: TrainConfig,
    num_processes: int,
    groups: Sequence[Hashable] | None = None,
    lengths: Sequence[int] | None = None,
) -> list[list[list[int]]]:
    """Global micro-batches grouped into optimizer steps.

    Args:
        groups: optional group key per example (e.g. its prompt). When given, each epoch shuffles the
            groups, not the rows: the examples of a group stay consecutive (in their original order),
            so a micro-batch holds whole groups wherever the batch size allows.
        lengths: optional token length per example (``train.group_by_length``). Each epoch's shuffled
            order is cut into windows of ``LENGTH_WINDOW`` global micro-batches; each window is sorted
            by length and cut into micro-batches, and the epoch's micro-batches are shuffled. Rows of
            similar length share a batch (less padding); which rows meet stays random across windows.
    Returns:
        steps[s][m] = the global indices of micro-batch m of step s (length ≤ batch_size·P).
        A trailing global micro-batch smaller than the process count is dropped (every process
        must see at least one example); the caller reports it.
    """
    if groups is not None and len(groups) != n_examples:
        raise ValueError(f"groups has {len(groups)} keys for {n_examples} examples")
    if lengths is not None and len(lengths) != n_examples:
        raise ValueError(f"lengths has {len(lengths)} entries for {n_examples} examples")
    if groups is not None and lengths is not None:
        raise ValueError("group by prompt or by length, not both")
    members: dict[Hashable, list[int]] = {}
    for index, key in enumerate(groups or ()):
        members.setdefault(key, []).append(index)
    global_batch = train.batch_size * num_processes
    steps: list[list[list[int]]] = []
    for epoch in range(train.epochs):
        gen = torch.Generator().manual_seed(train.seed * 100_003 + epoch)
        if groups is None:
            order = torch.randperm(n_examples, generator=gen).tolist()
        else:
            keys = list(members)
            order = [i for g in torch.randperm(len(keys), generator=gen).tolist() for i in members[keys[g]]]
        if lengths is None:
            micro = [order[i : i + global_batch] for i in range(0, n_examples, global_batch)]
        else:
            micro = _length_grouped(order, lengths, global_batch, gen)
        micro = [m for m in micro if len(m) >= num_processes]
        for i in range(0, len(micro), train.grad_accum):
            steps.append(micro[i : i + train.grad_accum])
    if train.max_steps is not None:
        steps = steps[: train.max_steps]
    return steps


LENGTH_WINDOW = 50
"""Global micro-batches per length-sorting window (as transformers' LengthGroupedSampler's mega-batch)."""


def _length_grouped(
    order: list[int], lengths: Sequence[int], global_batch: int, gen: torch.Generator
) -> list[list[int]]:
    """Micro-batches of similar-length rows from one epoch's shuffled ``order`` (see plan_steps)."""
    window = global_batch * LENGTH_WINDOW
    micro: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: -lengths[i])  # stable: ties keep shuffled order
        micro += [chunk[i : i + global_batch] for i in range(0, len(chunk), global_batch)]
    # a trailing short micro-batch stays last (it may be dropped); the full ones are shuffled
    full = [m for m in micro if len(m) == global_batch]
    rest = [m for m in micro if len(m) < global_batch]
    return [full[i] for i in torch.randperm(len(full), generator=gen).tolist()] + rest


def build_optimizer(
    model: nn.Module,
    optim: OptimConfig,
    total_steps: int,
    head_names: tuple[str, ...] = ("head", "prompt_head"),
    fused: bool = False,
):
    """AdamW, RMSprop or SGD over trainable parameters (new heads may get their own lr) and a warm-up schedule.

    ``fused``: PyTorch's fused AdamW kernel (one launch for all parameters; the caller turns it on for
    CUDA, where the per-parameter loop of the default implementation costs many small kernels)."""
    from transformers import get_scheduler

    head, body = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if name.split(".")[0] in head_names else body).append(param)
    groups = [{"params": body, "lr": optim.lr}] if body else []
    if head:
        groups.append({"params": head, "lr": optim.head_lr or optim.lr})
    if optim.name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=optim.lr, weight_decay=optim.weight_decay)
    elif optim.name == "rmsprop":
        optimizer = torch.optim.RMSprop(
            groups, lr=optim.lr, alpha=optim.betas[1], weight_decay=optim.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(
            groups,
            lr=optim.lr,
            betas=tuple(optim.betas),
            weight_decay=optim.weight_decay,
            fused=fused or None,
        )
    name = "constant_with_warmup" if optim.scheduler == "constant" else optim.scheduler
    scheduler = get_scheduler(
        name,
        optimizer,
        num_warmup_steps=math.ceil(optim.warmup_ratio * total_steps),
        num_training_steps=max(total_steps, 1),
    )
    return optimizer, scheduler
