"""Turn encoded sequences into padded tensors (either padding side; positions restart at 0)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genpref.data.encode import Encoded


def pad_sequences(encoded: Sequence[Encoded], pad_id: int, padding_side: str = "right") -> dict[str, Tensor]:
    """Pad token ids to one length.

    Returns:
        input_ids (N, T), attention_mask (N, T), position_ids (N, T) counting real tokens from 0
        (so left and right padding give the same positions), and prompt_index (N,): the padded
        position of each sequence's last prompt token.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be left or right, got {padding_side!r}")
    length = max(len(e.input_ids) for e in encoded)
    n = len(encoded)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, length), dtype=torch.long)
    prompt_index = torch.empty(n, dtype=torch.long)
    for row, e in enumerate(encoded):
        offset = 0 if padding_side == "right" else length - len(e.input_ids)
        input_ids[row, offset : offset + len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
        attention_mask[row, offset : offset + len(e.input_ids)] = 1
        prompt_index[row] = offset + e.prompt_len - 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp_min(0)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "prompt_index": prompt_index,
    }


def prompt_only(encoded: Sequence[Encoded]) -> list[Encoded]:
    """The prompt prefix of each sequence (for an encoder's prompt-only forward)."""
    return [
        Encoded(input_ids=list(e.input_ids[: e.prompt_len]), prompt_len=e.prompt_len, truncated=e.truncated)
        for e in encoded
    ]
