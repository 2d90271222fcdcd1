"""Batching tokenised (prompt, completion) sequences for log-prob computation: packed or padded."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genpref.data.encode import Encoded


def completion_tokens(seq: Encoded) -> int:
    return len(seq.input_ids) - seq.prompt_len


def pack(seqs: Sequence[Encoded]) -> dict[str, Tensor | int | None]:
    """All sequences in one row (1, L): positions restart per sequence, no attention mask.

    transformers turns restarting ``position_ids`` (with ``attention_mask=None`` and no cache) into a
    block-diagonal causal mask, so no token attends across sequences and no padding is computed.
    """
    ids, pos, comp, owner = [], [], [], []
    for i, s in enumerate(seqs):
        n = len(s.input_ids)
        ids += s.input_ids
        pos += range(n)
        comp += [0] * s.prompt_len + [1] * (n - s.prompt_len)
        owner += [i] * n
    as_row = lambda xs: torch.tensor(xs, dtype=torch.long)[None]  # noqa: E731
    return {
        "input_ids": as_row(ids),
        "position_ids": as_row(pos),
        "completion_mask": as_row(comp),
        "attention_mask": None,
        "seq_index": as_row(owner),
        "n_seqs": len(seqs),
    }


def pad(seqs: Sequence[Encoded], pad_id: int) -> dict[str, Tensor | int | None]:
    """Right-padded (B, T) rows with an attention mask; the completion mask excludes padding."""
    length = max(len(s.input_ids) for s in seqs)
    b = len(seqs)
    input_ids = torch.full((b, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((b, length), dtype=torch.long)
    completion_mask = torch.zeros((b, length), dtype=torch.long)
    for row, s in enumerate(seqs):
        n = len(s.input_ids)
        input_ids[row, :n] = torch.tensor(s.input_ids)
        attention_mask[row, :n] = 1
        completion_mask[row, s.prompt_len : n] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp_min(0)
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "completion_mask": completion_mask,
        "attention_mask": attention_mask,
        "seq_index": None,
        "n_seqs": b,
    }


VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")


def resolve_packing(setting: bool | str, model) -> bool:
    """``engine.packing``: True/False as given; "auto" packs only when attention has varlen kernels."""
    if setting != "auto":
        return bool(setting)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base.config, "_attn_implementation", None) in VARLEN_ATTENTION


def shared_prompt_groups(seqs: Sequence[Encoded], pad_id: int) -> dict[str, list | int]:
    """Sequences grouped by identical prompt, for ``policy.logprobs.shared_prompt_logps``.

    Returns ``{"groups": [(prompt (1, P), completions (n, C), completion mask (n, C), rows (n,))],
    "n_seqs": S}``: one entry per distinct prompt, ``rows`` the positions of its sequences in ``seqs``.
    """
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(seqs):
        by_prompt.setdefault(tuple(s.input_ids[: s.prompt_len]), []).append(i)
    groups = []
    for prompt, rows in by_prompt.items():
        comps = [seqs[i].input_ids[seqs[i].prompt_len :] for i in rows]
        width = max(len(c) for c in comps)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, c in enumerate(comps):
            ids[r, : len(c)] = torch.tensor(c, dtype=torch.long)
            mask[r, : len(c)] = 1
        groups.append((torch.tensor([prompt], dtype=torch.long), ids, mask, torch.tensor(rows)))
    return {"groups": groups, "n_seqs": len(seqs)}


def make_batch(seqs: Sequence[Encoded], *, packing: bool, pad_id: int, device=None) -> dict:
    batch = pack(seqs) if packing else pad(seqs, pad_id)
    return {k: v.to(device) if isinstance(v, Tensor) and device is not None else v for k, v in batch.items()}
