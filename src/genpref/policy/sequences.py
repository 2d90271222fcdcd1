"""Batching tokenised (prompt, completion) sequences for log-prob computation: packed or padded."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genpref.data.encode import Encoded
from genpref.models.lora import unwrapped


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


VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3", "flex_attention")
"""Attention implementations whose cost on a packed row is linear in its sequences: flash attention's
varlen kernels, and flex attention's block mask (transformers builds it from restarting position ids and
skips every block that lies across two sequences)."""


def attention_implementation(model) -> str | None:
    """transformers' ``attn_implementation`` of ``model`` (or of the model inside a peft wrapper)."""
    return getattr(getattr(unwrapped(model), "config", None), "_attn_implementation", None)


def resolve_packing(setting: bool | str, model) -> bool:
    """``engine.packing``: True/False as given; "auto" packs only when attention is varlen (above)."""
    if setting != "auto":
        return bool(setting)
    return attention_implementation(model) in VARLEN_ATTENTION


def shared_prompt_groups(seqs: Sequence[Encoded], pad_id: int, device=None) -> dict[str, Tensor]:
    """Sequences with their distinct prompts batched once, for ``policy.logprobs.shared_prompt_logps``
    (which returns one value per sequence, in order, so no sequence count is needed).

    Returns ``{"prompt_ids": (G, P), "prompt_mask": (G, P)`` (the G distinct prompts, right-padded),
    ``"completion_ids": (S, C), "completion_mask": (S, C)`` (every sequence's completion, right-padded,
    in the order of ``seqs``), ``"group": (S,)}`` (the prompt row of each sequence), on ``device``.
    """
    index: dict[tuple[int, ...], int] = {}
    group = [index.setdefault(tuple(s.input_ids[: s.prompt_len]), len(index)) for s in seqs]
    prompts = list(index)
    comps = [s.input_ids[s.prompt_len :] for s in seqs]

    def right_padded(rows: list) -> tuple[Tensor, Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        return ids, mask

    prompt_ids, prompt_mask = right_padded(prompts)
    completion_ids, completion_mask = right_padded(comps)
    batch = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "group": torch.tensor(group, dtype=torch.long),
    }
    return {k: v.to(device) for k, v in batch.items()} if device is not None else batch


def make_batch(seqs: Sequence[Encoded], *, packing: bool, pad_id: int, device=None) -> dict:
    batch = pack(seqs) if packing else pad(seqs, pad_id)
    return {k: v.to(device) if isinstance(v, Tensor) and device is not None else v for k, v in batch.items()}
