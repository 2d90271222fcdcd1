"""Unpaired policy-optimisation losses: KTO (Ethayarajh et al. 2024, arXiv 2402.01306).

KTO learns from single completions labelled desirable or undesirable rather than from pairs. Its
reference point z_ref is a batch-level estimate of KL(π_θ ‖ π_ref), taken on *mismatched* examples
(each prompt paired with another example's completion, as TRL does by rotating completions within a
batch), detached and clamped at 0. ``kto_kl_estimate`` computes it; ``kto_loss`` consumes it.

Inputs are summed completion log-probs (not length-normalised), shape (B,). Nothing is reduced here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class UnpairedPolicyLossOutput(NamedTuple):
    """Per-example outputs of an unpaired loss.

    Attributes:
        losses: (B,) per-example losses, carrying grad.
        rewards: (B,) detached implicit rewards β·(log π(y|x) − log π_ref(y|x)), for desirable and
            undesirable examples alike (select with ``label`` to log them separately).
    """

    losses: Tensor
    rewards: Tensor


def kto_kl_estimate(policy_kl_logps: Tensor, reference_kl_logps: Tensor) -> Tensor:
    """Batch-mismatched estimate of the KTO reference point z_ref = max(0, mean(log π − log π_ref)).

    The log-probs are those of completions paired with the *wrong* prompts (y' from another example
    of the batch), so that the estimate is of KL(π_θ(y'|x) ‖ π_ref(y'|x)) and not of the rewards
    themselves, as in the KTO paper. The result is detached: z_ref is a baseline, not a training signal,
    and clamped at 0 because a KL divergence cannot be negative (a negative batch estimate is noise).

    The mean over the batch is the one reduction in this module: z_ref is by definition a batch
    statistic. Under data parallelism the engine averages it across ranks before calling ``kto_loss``.

    Args:
        policy_kl_logps: (B_kl,) summed log π_θ(y'|x) of mismatched completions.
        reference_kl_logps: (B_kl,) summed log π_ref(y'|x) of the same.
    Returns:
        () scalar tensor z_ref ≥ 0, detached.
    """
    return (policy_kl_logps - reference_kl_logps).mean().detach().clamp(min=0)


def kto_loss(
    policy_logps: Tensor,
    reference_logps: Tensor,
    label: Tensor,
    kl: Tensor | float,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> UnpairedPolicyLossOutput:
    """KTO loss (Ethayarajh et al. 2024, Eq. 8): λ_y − v(x, y) per example.

    With r = log π_θ(y|x) − log π_ref(y|x):

    * desirable:   λ_D · (1 − σ(β (r − z_ref)))
    * undesirable: λ_U · (1 − σ(β (z_ref − r)))

    Args:
        policy_logps: (B,) summed completion log-probs under the policy.
        reference_logps: (B,) summed completion log-probs under the reference.
        label: (B,) bool, True where the completion is desirable.
        kl: () z_ref from ``kto_kl_estimate`` (detached again here; it must carry no gradient).
        beta: β, the inverse temperature of the value function.
        desirable_weight: λ_D.
        undesirable_weight: λ_U. The paper recommends λ_D n_D / (λ_U n_U) ∈ [1, 4/3].
    Returns:
        ``UnpairedPolicyLossOutput`` of (B,) losses (input order kept; TRL concatenates desirable
        then undesirable, which only matters for its batch mean) and detached rewards β·r.
    """
    logratios = policy_logps - reference_logps  # (B,)
    kl = torch.as_tensor(kl, dtype=logratios.dtype, device=logratios.device).detach()
    label = label.to(torch.bool)
    desirable = desirable_weight * (1 - torch.sigmoid(beta * (logratios - kl)))
    undesirable = undesirable_weight * (1 - torch.sigmoid(beta * (kl - logratios)))
    losses = torch.where(label, desirable, undesirable)
    return UnpairedPolicyLossOutput(losses, beta * logratios.detach())
