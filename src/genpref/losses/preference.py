"""Losses for training preference models (BT, GPM, PairPM) on comparison data.

Every loss takes the model's preference *logit* z = s(chosen ≻ rejected | x) / τ, shape (B,),
and returns per-example losses (B,); the caller reduces (so per-example weights and gradient
accumulation stay exact). One link function per loss:

* ``hard``: −log σ(z − m) for a hard label (chosen wins), with optional margin m in logit
  units (Llama-2-style margin loss; BT: Eq. 3.2 of arXiv 2410.02197; GPM: Eq. 4.3).
* ``soft``: cross-entropy against a target probability p = P(chosen ≻ rejected):
  −p log σ(z) − (1 − p) log σ(−z).
* ``regression``: ½ (z − t)² against a target logit t (the regression variant of the GPM
  authors' code; here t = logit(p) clipped, or the row's margin when given).
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor


class PreferenceLossType(str, Enum):
    HARD = "hard"
    SOFT = "soft"
    REGRESSION = "regression"

    @property
    def uses_soft_labels(self) -> bool:
        return self is not PreferenceLossType.HARD


def hard_label_loss(logits: Tensor, margin: Tensor | None = None) -> Tensor:
    """−log σ(z − m): chosen should win by at least the margin m (logit units).

    Args:
        logits: (B,) z = s / τ, oriented so that positive means chosen wins.
        margin: (B,) or None (m = 0).
    Returns:
        (B,) per-example losses.
    """
    if margin is not None:
        logits = logits - margin
    return -F.logsigmoid(logits)


def soft_label_loss(logits: Tensor, target_prob: Tensor) -> Tensor:
    """Binary cross-entropy between σ(z) and the target probability p that chosen wins.

    Args:
        logits: (B,).
        target_prob: (B,) in [0, 1]; p = 1 recovers ``hard_label_loss`` without margin.
    Returns:
        (B,) per-example losses.
    """
    return F.binary_cross_entropy_with_logits(logits, target_prob.to(logits.dtype), reduction="none")


def regression_loss(logits: Tensor, target_logit: Tensor) -> Tensor:
    """½ (z − t)²: regress the preference logit on a target logit t.

    Args:
        logits: (B,).
        target_logit: (B,).
    Returns:
        (B,) per-example losses.
    """
    return 0.5 * (logits - target_logit.to(logits.dtype)) ** 2


def regression_target(label: Tensor, margin: Tensor | None, clip: float) -> Tensor:
    """Target logit for ``regression_loss``: the margin where given, else logit(p) clipped to ±clip.

    A hard label p = 1 has logit +∞, hence the clip (why: a finite target keeps the square loss bounded).
    """
    eps = torch.finfo(torch.float32).eps
    target = torch.logit(label.float().clamp(eps, 1 - eps)).clamp(-clip, clip)
    if margin is not None:
        target = torch.where(torch.isnan(margin), target, margin.float())
    return target


def reward_centering_penalty(first: Tensor, second: Tensor) -> Tensor:
    """(r₁ + r₂)² per pair: the auxiliary loss that keeps a BT reward's mean near 0 (Eisenstein et al. 2023,
    arXiv 2312.09244; TRL's ``center_rewards_coefficient``). A BT loss only sees r₁ − r₂, so without it
    the rewards drift by a free constant per prompt; the penalty pins the pair's mean to 0 and leaves
    the difference, hence the preference probability, to the main loss.

    Args:
        first, second: (B,) rewards of the two sides.
    Returns:
        (B,) penalties. Example: r = (1.5, −0.5) → 1.0.
    """
    return (first + second) ** 2


def preference_loss(
    loss_type: PreferenceLossType,
    logits: Tensor,
    label: Tensor,
    margin: Tensor | None = None,
    regression_clip: float = 5.0,
) -> Tensor:
    """Dispatch to one link function.

    Args:
        loss_type: which loss.
        logits: (B,) preference logits z = s(chosen ≻ rejected) / τ.
        label: (B,) probability that chosen wins (1.0 for hard labels).
        margin: (B,) optional margins; NaN entries mean "no margin for this row".
        regression_clip: bound on the regression target logit.
    Returns:
        (B,) per-example losses.
    """
    if loss_type is PreferenceLossType.HARD:
        # a hard label below ½ means the stored "rejected" actually won: flip the logit.
        oriented = torch.where(label >= 0.5, logits, -logits)
        m = None if margin is None else torch.nan_to_num(margin, nan=0.0).to(logits.dtype)
        return hard_label_loss(oriented, m)
    if loss_type is PreferenceLossType.SOFT:
        return soft_label_loss(logits, label)
    if loss_type is PreferenceLossType.REGRESSION:
        return regression_loss(logits, regression_target(label, margin, regression_clip))
    raise ValueError(f"unknown preference loss {loss_type!r}")
