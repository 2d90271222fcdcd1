"""Preference queries (pair scores, rankings, group-relative rewards) over a pluggable forward backend.

The TRL reward function runs the backbone in-process (:class:`LocalForwards`); the HTTP server sends the
same forwards through its dynamic batcher. Both call the functions below, so a reward is one formula
whichever way it is served.

Group-relative rewards (:func:`group_rewards`), for the K completions y_1..y_K of one prompt x:

* BT: r_i, the scalar reward (K forwards);
* GPM: s(y_i ≻ π̂ | x) = ⟨R^≻(x) v_i, mean_j v_j⟩, the score against the uniform mixture of the
  group (arXiv 2410.02197, §5; K forwards, not K²); a group of one scores 0;
* PairPM: mean_j P(y_i ≻ y_j | x) with j = i counted as ½ (``RankResult.prob_vs_mixture``);
  K(K−1) joint forwards, one per ordered pair; a group of one scores ½.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from genpref.data.encode import Encoded
from genpref.data.types import Prompt
from genpref.models import scores as S
from genpref.models.preference_model import (
    PreferenceModel,
    RankResult,
    rank_from_embeddings,
    rank_from_pair_logits,
)


class Forwards(Protocol):
    """Runs backbone forwards for tokenised sequences."""

    def embed(self, encoded: Sequence[Encoded], groups: Tensor) -> tuple[Tensor, Tensor | None]:
        """BT/GPM: embeddings (N, d) and gate eigenvalues (N, k) | None; rows of one group share a prompt."""
        ...

    def joint_logits(self, encoded: Sequence[Encoded]) -> Tensor:
        """PairPM: classifier logits (N,) of (x, a, b) sequences."""
        ...


class LocalForwards:
    """Forwards in this process, in chunks of ``batch_size`` sequences (None: one forward for all)."""

    def __init__(self, model: PreferenceModel, batch_size: int | None = None) -> None:
        self.model, self.batch_size = model, batch_size

    def _chunks(self, n: int) -> list[slice]:
        size = self.batch_size or max(n, 1)
        return [slice(start, start + size) for start in range(0, n, size)]

    @torch.inference_mode()
    def embed(self, encoded: Sequence[Encoded], groups: Tensor) -> tuple[Tensor, Tensor | None]:
        out_e, out_l = [], []
        for chunk in self._chunks(len(encoded)):
            _, local = torch.unique(groups[chunk], return_inverse=True)  # ids 0..G-1 within the chunk
            e, lam = self.model.embed_encoded(list(encoded[chunk]), local)
            out_e.append(e.float().cpu())
            if lam is not None:
                out_l.append(lam.float().cpu())
        return torch.cat(out_e), (torch.cat(out_l) if out_l else None)

    @torch.inference_mode()
    def joint_logits(self, encoded: Sequence[Encoded]) -> Tensor:
        return torch.cat(
            [self.model.joint_logits_encoded(list(encoded[c])) for c in self._chunks(len(encoded))]
        )


def prompt_groups(prompts: Sequence[Prompt]) -> Tensor:
    """Group id per row: rows with equal prompts form one group (ids in order of first appearance).

    TRL's GRPO/RLOO trainers and OpenRLHF send the K samples of a prompt in one call; a prompt that
    occurs twice in a call gives one larger group (more samples of the same policy's mixture).

    Returns:
        (N,) long ids 0..G-1.
    """
    ids: dict[str, int] = {}
    keys = [p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in prompts]
    return torch.tensor([ids.setdefault(key, len(ids)) for key in keys], dtype=torch.long)


def group_rewards(
    model: PreferenceModel,
    forwards: Forwards,
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    groups: Tensor | None = None,
) -> Tensor:
    """Group-relative reward of each response (module docstring), shape (N,).

    Args:
        prompts, responses: N rows.
        groups: (N,) group ids; default :func:`prompt_groups`. Rows of a group must share a prompt.
    """
    groups = prompt_groups(prompts) if groups is None else groups
    if model.config.type == "pairpm":
        members = [torch.nonzero(groups == g).flatten().tolist() for g in range(int(groups.max()) + 1)]
        pairs = [(i, j) for m in members for i in m for j in m if i != j]
        prob = torch.full((len(responses),), 0.5)  # the j = i term
        if pairs:
            enc = [model.encode_joint_for_inference(prompts[i], responses[i], responses[j]) for i, j in pairs]
            p = S.preference_prob(forwards.joint_logits(enc), model.config.temperature)  # (M,)
            prob = prob.index_add(0, torch.tensor([i for i, _ in pairs]), p)
        return prob / torch.bincount(groups)[groups].float()
    enc = [model.encode_for_inference(p, r) for p, r in zip(prompts, responses, strict=True)]
    emb, lam = forwards.embed(enc, groups)
    if model.config.type == "bt":
        return emb.squeeze(-1)
    return model.config.sign * S.gpm_score_vs_group_mixture(emb, groups, lam)


def pair_scores(
    model: PreferenceModel,
    forwards: Forwards,
    prompts: Sequence[Prompt],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
) -> Tensor:
    """s(a ≻ b | x) for N rows, shape (N,), as ``PreferenceModel.score`` (PairPM: the (x, a, b) logit)."""
    if model.config.type == "pairpm":
        rows = zip(prompts, responses_a, responses_b, strict=True)
        return forwards.joint_logits([model.encode_joint_for_inference(p, a, b) for p, a, b in rows])
    n = len(prompts)
    pair_prompts = [*prompts, *prompts]
    enc = [model.encode_for_inference(p, r) for p, r in zip(pair_prompts, [*responses_a, *responses_b])]
    emb, lam = forwards.embed(enc, torch.arange(n).repeat(2))
    return model.pair_scores(emb[:n], emb[n:], None if lam is None else lam[:n])


def rank(model: PreferenceModel, forwards: Forwards, prompt: Prompt, responses: Sequence[str]) -> RankResult:
    """K responses to one prompt, as ``PreferenceModel.rank`` (K forwards; PairPM K(K−1))."""
    k = len(responses)
    if model.config.type == "pairpm":
        pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
        logits = forwards.joint_logits(
            [model.encode_joint_for_inference(prompt, responses[i], responses[j]) for i, j in pairs]
        )
        score = torch.zeros(k, k)
        score[tuple(torch.tensor(pairs).T)] = logits
        return rank_from_pair_logits(score, model.config.temperature, len(pairs))
    enc = [model.encode_for_inference(prompt, r) for r in responses]
    emb, lam = forwards.embed(enc, torch.zeros(k, dtype=torch.long))
    gated_encoder = lam is not None and model.is_encoder
    return rank_from_embeddings(model.config, emb, None if lam is None else lam[0], k + int(gated_encoder))
