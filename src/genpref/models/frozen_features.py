"""Frozen-backbone features: run the backbone once per distinct sequence, then train only the heads.

With ``train.finetune: frozen`` every optimizer step of ``rm train`` would run the same frozen backbone
over the same sequences again, epoch after epoch. The heads see the backbone only through the pooled
state of each sequence (and, for a gated GPM, the prompt state), so those are computed once here and the
training forward reads them instead of the ids (``PreferenceModel.forward(pooled=..., prompt_state=...)``):
the same loss and gradients as the uncached run without dropout (``train.disable_dropout``), at the cost
of one inference pass over the *distinct* sequences. This is the linear-probe reward model; ``bench nash
--judge_finetune frozen`` trains its judges this way in seconds (docs/nash.md, session 14).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genpref.data.encode import Encoded
from genpref.models.backbone import gather_positions, pool
from genpref.models.batching import prompt_only


def sequence_key(encoded: Encoded) -> tuple[int, ...]:
    """Identity of a tokenised sequence for the cache: its prompt length (pooling and the prompt state
    depend on it) and its ids."""
    return (encoded.prompt_len, *encoded.input_ids)


@torch.no_grad()  # not inference_mode: the heads' autograd saves these rows
def pooled_states(model, encoded: Sequence[Encoded], batch_size: int) -> tuple[Tensor, Tensor | None]:
    """(N, H) pooled states of N sequences by the model's pooling rule, and (N, H) their prompt states
    for a gated GPM (encoder: the pooled prompt-only forward, as in training, run once per distinct
    prompt; decoder: the state at the last prompt token), else None. Sequences are batched by length to
    keep padding small; the rows come back in input order."""
    gated = model.prompt_head is not None
    pooled, decoder_prompts = _by_length(
        model, encoded, batch_size, with_prompt=gated and not model.is_encoder
    )
    if not gated or not model.is_encoder:
        return pooled, decoder_prompts
    prompts = prompt_only(encoded)
    position: dict[tuple[int, ...], int] = {}
    for p in prompts:
        position.setdefault(tuple(p.input_ids), len(position))
    distinct = list({tuple(p.input_ids): p for p in prompts}.values())  # in first-seen order
    states, _ = _by_length(model, distinct, batch_size, with_prompt=False, rule=model._prompt_pooling)
    return pooled, states[[position[tuple(p.input_ids)] for p in prompts]]


def _by_length(model, encoded, batch_size: int, with_prompt: bool, rule: str | None = None):
    """(N, H) pooled states of N sequences (``rule``, default the model's pooling) and, with
    ``with_prompt``, (N, H) their states at the last prompt token; batched by length, input order kept."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    pooled = prompt = None
    for start in range(0, len(order), batch_size):
        rows = torch.tensor(order[start : start + batch_size])
        batch = model._batch([encoded[i] for i in rows.tolist()])
        hidden = model._hidden(batch)  # (b, T, H)
        states = pool(hidden, batch["attention_mask"], rule or model.pooling, batch["prompt_index"])  # (b, H)
        if pooled is None:
            pooled = states.new_empty(len(encoded), states.shape[-1])
            prompt = states.new_empty(len(encoded), states.shape[-1]) if with_prompt else None
        pooled[rows] = states
        if with_prompt:
            prompt[rows] = gather_positions(hidden, batch["prompt_index"])  # (b, H)
    return pooled, prompt


class FrozenFeatures:
    """The pooled (and prompt) states of every distinct sequence of N tokenised comparisons, and the
    training batch of any of them.

    Args:
        model: the PreferenceModel, its backbone frozen (it is run in eval mode here).
        features: N comparisons (``PairFeatures``).
        batch_size: sequences per backbone forward.
    """

    def __init__(self, model, features: Sequence, batch_size: int) -> None:
        position: dict[tuple[int, ...], int] = {}
        distinct: list[Encoded] = []
        sides = []  # (N, 2) each comparison's two rows of the cache
        for f in features:
            pair = []
            for encoded in (f.first, f.second):
                key = sequence_key(encoded)
                if key not in position:
                    position[key] = len(distinct)
                    distinct.append(encoded)
                pair.append(position[key])
            sides.append(pair)
        was_training = model.backbone.training
        model.backbone.eval()
        try:
            self.pooled, self.prompt_states = pooled_states(model, distinct, batch_size)  # (D, H)
        finally:
            model.backbone.train(was_training)
        self.sides = torch.tensor(sides, dtype=torch.long).reshape(-1, 2)  # (N, 2)
        self.label = torch.tensor([f.label for f in features], dtype=torch.float32)
        self.margin = torch.tensor([f.margin for f in features], dtype=torch.float32)
        self.decoder = not model.is_encoder

    @property
    def distinct(self) -> int:
        """Backbone forwards spent: the number of distinct sequences."""
        return self.pooled.shape[0]

    def batch(self, indices: Sequence[int]) -> dict[str, Tensor]:
        """The ``PreferenceModel.forward`` inputs of comparisons ``indices`` (B of them): pooled (2B, H),
        first sides then second sides as ``collate`` orders them, label (B,), margin (B,), and for a gated
        GPM prompt_state (B, H): the first side's prompt state (encoder: one prompt-only forward per pair)
        or the mean of both sides' (decoder, as the uncached forward takes it)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        first, second = self.sides[idx, 0], self.sides[idx, 1]  # (B,)
        out = {
            "pooled": torch.cat([self.pooled[first], self.pooled[second]]),
            "label": self.label[idx],
            "margin": self.margin[idx],
        }
        if self.prompt_states is not None:
            p1, p2 = self.prompt_states[first], self.prompt_states[second]
            out["prompt_state"] = 0.5 * (p1 + p2) if self.decoder else p1
        return out
