"""Offline policy-optimisation losses: DPO and its relatives.

Every loss is a pure function over per-example completion log-probs, shape (B,), returning
``PolicyLossOutput(losses, chosen_rewards, rejected_rewards)``, all (B,), unreduced. Rewards are
detached, for logging; each docstring says which reward it reports. ``PolicyLoss.length_normalized``
tells the engine whether to feed summed completion log-probs Σ_t log π(y_t | x, y_<t) or their
per-token average; the functions use whatever they are given. The engine adds ORPO's SFT term
(``nll_loss``). KTO is unpaired and lives in ``policy_unpaired``; ``policy_loss`` dispatches all.

Where TRL 1.16 departs from the papers (tests/test_trl_parity_losses.py pins each point):

* IPO: TRL's DPOTrainer divides the log-ratios by the completion length; Eq. 17 of the paper uses
  sums. ``PolicyLoss.IPO`` is the length-normalised (TRL) convention, ``PolicyLoss.IPO_SUM`` the sum.
* cDPO: TRL's DPOTrainer ``sigmoid`` ignores ``label_smoothing``; use ``PolicyLoss.CDPO`` here.
* SimPO: TRL's ``simpo_gamma`` is the paper's γ (TRL's code subtracts γ/β before scaling by β);
  the authors' repository configures ``gamma_beta_ratio`` = γ/β instead. TRL's CPOTrainer also adds
  ``cpo_alpha`` (default 1.0) × NLL, so paper SimPO needs ``cpo_alpha=0``.
* ORPO: TRL's NLL term averages over prompt *and* completion tokens of the whole batch.
* SPPO: TRL has only the hard variant (P̂ = 1 for the winner, 0 for the loser).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from genpref.losses.policy_unpaired import UnpairedPolicyLossOutput, kto_loss
from genpref.losses.selfplay import selfplay_square_loss, sppo_target

# ORPO's log odds need log(1 − p) with p = exp(average log-prob); a completion the policy is certain
# of (average exactly 0, e.g. in bf16) would give log 0 and a NaN gradient, so the average is capped.
_ORPO_MAX_AVG_LOGP = -1e-6


class PolicyLoss(str, Enum):
    DPO = "dpo"
    CDPO = "cdpo"
    ROBUST = "robust"
    IPO = "ipo"
    IPO_SUM = "ipo_sum"
    HINGE = "hinge"
    SIMPO = "simpo"
    ORPO = "orpo"
    SPPO = "sppo"
    SPPO_HARD = "sppo_hard"
    KTO = "kto"

    @property
    def needs_reference(self) -> bool:
        """Whether the loss reads reference-model log-probs."""
        return self not in (PolicyLoss.SIMPO, PolicyLoss.ORPO)

    @property
    def paired(self) -> bool:
        """Whether the loss consumes (chosen, rejected) pairs; KTO consumes labelled single completions."""
        return self is not PolicyLoss.KTO

    @property
    def length_normalized(self) -> bool:
        """Whether to feed per-token average log-probs (True) or summed log-probs (False)."""
        return self in (PolicyLoss.IPO, PolicyLoss.SIMPO, PolicyLoss.ORPO)

    @property
    def requires_sft_term(self) -> bool:
        """Whether the method's objective includes an NLL term on the chosen completion (ORPO Eq. 6)."""
        return self is PolicyLoss.ORPO

    @property
    def uses_label_smoothing(self) -> bool:
        """Whether ``label_smoothing`` (the assumed label-flip rate ε) enters the loss."""
        return self in (PolicyLoss.CDPO, PolicyLoss.ROBUST)

    @property
    def uses_preference_scores(self) -> bool:
        """Whether the loss reads soft win probabilities from the data (SPPO)."""
        return self is PolicyLoss.SPPO


class PolicyLossOutput(NamedTuple):
    """Per-example outputs of a paired loss.

    Attributes:
        losses: (B,) per-example losses, carrying grad.
        chosen_rewards: (B,) detached implicit reward of the chosen completion.
        rejected_rewards: (B,) detached implicit reward of the rejected completion.
    """

    losses: Tensor
    chosen_rewards: Tensor
    rejected_rewards: Tensor


def _with_reference_rewards(
    losses: Tensor, chosen_logratios: Tensor, rejected_logratios: Tensor, beta: float
) -> PolicyLossOutput:
    """Attach the DPO implicit rewards β·(log π − log π_ref) (Rafailov et al. 2023, Eq. 5, up to β log Z)."""
    return PolicyLossOutput(losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach())


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> PolicyLossOutput:
    """DPO (Rafailov et al. 2023, Eq. 7): −log σ(β h), h = (log π − log π_ref)(y_w) − (…)(y_l).

    Args:
        policy_chosen_logps, policy_rejected_logps: (B,) summed completion log-probs under π_θ.
        reference_chosen_logps, reference_rejected_logps: (B,) the same under π_ref.
        beta: β, the KL-regularisation strength.
    Returns:
        (B,) losses; rewards β·(log π − log π_ref) for chosen and rejected.
    """
    chosen = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected = policy_rejected_logps - reference_rejected_logps  # (B,)
    losses = -F.logsigmoid(beta * (chosen - rejected))
    return _with_reference_rewards(losses, chosen, rejected, beta)


def cdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
    label_smoothing: float,
) -> PolicyLossOutput:
    """Conservative DPO (Mitchell 2023, "A note on DPO with noisy preferences"): DPO with soft labels.

    −(1 − ε) log σ(β h) − ε log σ(−β h): binary cross-entropy of σ(β h) against 1 − ε. Unlike DPO it is
    minimised at a finite margin, β h = log((1 − ε) / ε), so it stops pushing once the pair is
    ranked with the confidence the noisy labels justify. ε = 0 recovers ``dpo_loss``.

    Args: as ``dpo_loss``, plus label_smoothing: ε ∈ [0, 1], the assumed label-flip rate.
    Returns: (B,) losses; rewards β·(log π − log π_ref).
    """
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    logits = beta * (chosen - rejected)  # (B,)
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return _with_reference_rewards(losses, chosen, rejected, beta)


def robust_dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
    label_smoothing: float,
) -> PolicyLossOutput:
    """Robust DPO (Chowdhury et al. 2024, Eq. 8): ((1 − ε) ℓ(h) − ε ℓ(−h)) / (1 − 2ε), ℓ(h) = −log σ(β h).

    An unbiased estimate of the clean-label DPO loss when labels flip with probability ε (why the
    minus sign and the 1 / (1 − 2ε)); unlike cDPO it stays monotone in the margin. ε = 0 is DPO.

    Args: as ``dpo_loss``, plus label_smoothing: ε ∈ [0, ½).
    Returns: (B,) losses; rewards β·(log π − log π_ref).
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"robust DPO needs label_smoothing in [0, 0.5), got {label_smoothing}")
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    logits = beta * (chosen - rejected)  # (B,)
    clean = -(1 - label_smoothing) * F.logsigmoid(logits)
    flipped = -label_smoothing * F.logsigmoid(-logits)
    losses = (clean - flipped) / (1 - 2 * label_smoothing)
    return _with_reference_rewards(losses, chosen, rejected, beta)


def ipo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> PolicyLossOutput:
    """IPO (Azar et al. 2023, Eq. 17): (h − 1 / (2β))², β being the paper's τ.

    The square pulls the log-ratio margin h to the finite target 1/(2β) instead of to infinity. The
    paper writes h with summed log-probs (``PolicyLoss.IPO_SUM``); TRL feeds per-token averages
    (``PolicyLoss.IPO``; its source says the IPO authors confirmed this is what their experiments
    used), which keeps the target comparable across completion lengths. Same formula, either input.

    Args: as ``dpo_loss``; the four log-probs all summed or all per-token averaged.
    Returns: (B,) losses; rewards β·(log π − log π_ref) in whichever convention was fed.
    """
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    losses = (chosen - rejected - 1 / (2 * beta)) ** 2
    return _with_reference_rewards(losses, chosen, rejected, beta)


def hinge_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> PolicyLossOutput:
    """Hinge / SLiC (Zhao et al. 2023, SLiC-HF calibration loss): relu(1 − β h).

    SLiC-HF's rank calibration loss max(0, δ − log π(y_w) + log π(y_l)), here with margin δ = 1/β and
    the log-probs normalised by the reference (the form of RSO, Liu et al. 2024, and of TRL); the
    original is reference-free and relies on an SFT regulariser instead.

    Args: as ``dpo_loss``.
    Returns: (B,) losses, exactly 0 once β h ≥ 1; rewards β·(log π − log π_ref).
    """
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    losses = torch.relu(1 - beta * (chosen - rejected))
    return _with_reference_rewards(losses, chosen, rejected, beta)


def sppo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
    chosen_win_prob: Tensor,
    rejected_win_prob: Tensor,
) -> PolicyLossOutput:
    """SPPO, offline (Wu et al. 2024, arXiv 2405.00675, Eq. 3.6 / Algorithm 1): the self-play square loss
    (``genpref.losses.selfplay``) on each side of the pair.

    (ρ_w − η (P̂_w − ½))² + (ρ_l − η (P̂_l − ½))², ρ = log π_θ(y|x) − log π_ref(y|x), η = 1/β. P̂(y) is
    the estimated probability that y beats the reference policy π_t (π_ref here), read from the data
    (e.g. a preference model's mean win rate of y against π_t's samples). Unlike DPO/IPO it targets
    each log-ratio separately, so the chosen likelihood rises and the rejected one falls.

    Args: as ``dpo_loss`` (summed log-probs), plus
        chosen_win_prob: (B,) P̂(y_w ≻ π_t | x) ∈ [0, 1].
        rejected_win_prob: (B,) P̂(y_l ≻ π_t | x) ∈ [0, 1].
    Returns: (B,) losses; rewards β·(log π − log π_ref).
    """
    eta = 1 / beta
    losses = selfplay_square_loss(
        policy_chosen_logps, reference_chosen_logps, sppo_target(chosen_win_prob), eta
    ) + selfplay_square_loss(
        policy_rejected_logps, reference_rejected_logps, sppo_target(rejected_win_prob), eta
    )
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    return _with_reference_rewards(losses, chosen, rejected, beta)


def sppo_hard_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> PolicyLossOutput:
    """SPPO with hard win probabilities P̂_w = 1, P̂_l = 0 (TRL's ``sppo_hard``).

    (ρ_w − 1/(2β))² + (ρ_l + 1/(2β))²: ``sppo_loss`` when the pair's label is taken as certain.

    Args: as ``dpo_loss``.
    Returns: (B,) losses; rewards β·(log π − log π_ref).
    """
    logps = (policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    ones = torch.ones_like(policy_chosen_logps)
    return sppo_loss(*logps, beta, chosen_win_prob=ones, rejected_win_prob=torch.zeros_like(ones))


def simpo_loss(
    policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, beta: float, gamma: float
) -> PolicyLossOutput:
    """SimPO (Meng et al. 2024, Eq. 6): −log σ(β ℓ̄(y_w) − β ℓ̄(y_l) − γ), reference-free.

    ℓ̄(y) = log π_θ(y|x) / |y| is the per-token average log-prob. γ is the target reward margin in
    reward units, i.e. TRL's ``simpo_gamma`` (the SimPO repository's ``gamma_beta_ratio`` is γ/β).

    Args:
        policy_chosen_logps, policy_rejected_logps: (B,) per-token *average* completion log-probs.
        beta: β, the reward scale.
        gamma: γ, the target reward margin.
    Returns:
        (B,) losses; rewards β·ℓ̄(y), SimPO's implicit reward (Eq. 4).
    """
    logits = beta * (policy_chosen_logps - policy_rejected_logps) - gamma  # (B,)
    losses = -F.logsigmoid(logits)
    return PolicyLossOutput(
        losses, beta * policy_chosen_logps.detach(), beta * policy_rejected_logps.detach()
    )


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 − eˣ) for x < 0, switching form at −log 2 to avoid cancellation (Mächler 2012)."""
    return torch.where(x < -math.log(2), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, beta: float) -> PolicyLossOutput:
    """ORPO odds-ratio term (Hong et al. 2024, Eq. 6–7): −λ log σ(log odds(y_w) − log odds(y_l)).

    log odds(y) = log p − log(1 − p) with log p = ℓ̄(y), the per-token average log-prob (the paper's P_θ(y|x)). ORPO's
    objective is L_SFT + λ L_OR (Eq. 6): the engine must add the NLL of the chosen completion
    (``PolicyLoss.ORPO.requires_sft_term``). Reference-free.

    Args:
        policy_chosen_logps, policy_rejected_logps: (B,) per-token *average* completion log-probs;
            capped just below 0 so that log(1 − p) stays finite.
        beta: λ, the weight of the odds-ratio term (TRL's ``ORPOConfig.beta``).
    Returns:
        (B,) λ·L_OR per example; rewards β·ℓ̄(y) (TRL's logging convention).
    """
    chosen = policy_chosen_logps.clamp(max=_ORPO_MAX_AVG_LOGP)  # (B,)
    rejected = policy_rejected_logps.clamp(max=_ORPO_MAX_AVG_LOGP)  # (B,)
    log_odds_ratio = (chosen - _log1mexp(chosen)) - (rejected - _log1mexp(rejected))  # (B,)
    losses = -beta * F.logsigmoid(log_odds_ratio)
    return PolicyLossOutput(
        losses, beta * policy_chosen_logps.detach(), beta * policy_rejected_logps.detach()
    )


def nll_loss(chosen_logps_sum: Tensor, chosen_token_counts: Tensor) -> Tensor:
    """Per-example SFT term: −(Σ_t log π(y_t | x, y_<t)) / |y_w|, the NLL per token of the chosen completion.

    The engine adds it (times a weight) for ORPO (Eq. 6) or any loss with an SFT regulariser. A mean
    over examples of these per-example averages weighs examples equally; TRL instead averages over
    all tokens of the batch (and, for ORPO, over the prompt tokens too).

    Args:
        chosen_logps_sum: (B,) summed completion log-probs of the chosen completion.
        chosen_token_counts: (B,) its number of completion tokens (clamped to ≥ 1).
    Returns:
        (B,) per-example NLL per token.
    """
    return -chosen_logps_sum / chosen_token_counts.to(chosen_logps_sum.dtype).clamp(min=1)


def _require(kind: PolicyLoss, **tensors: Tensor | float | None) -> None:
    missing = [name for name, value in tensors.items() if value is None]
    if missing:
        raise ValueError(f"policy loss {kind.value!r} needs {', '.join(missing)}")


def policy_loss(
    kind: PolicyLoss | str,
    *,
    beta: float,
    policy_chosen_logps: Tensor | None = None,
    policy_rejected_logps: Tensor | None = None,
    reference_chosen_logps: Tensor | None = None,
    reference_rejected_logps: Tensor | None = None,
    label_smoothing: float = 0.0,
    gamma: float = 0.5,
    chosen_win_prob: Tensor | None = None,
    rejected_win_prob: Tensor | None = None,
    policy_logps: Tensor | None = None,
    reference_logps: Tensor | None = None,
    label: Tensor | None = None,
    kl: Tensor | float | None = None,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> PolicyLossOutput | UnpairedPolicyLossOutput:
    """Dispatch to one loss. Arguments a loss does not use are ignored (reference log-probs for
    reference-free losses included); missing ones it needs raise ``ValueError``.

    Args:
        kind: which loss; its capability properties say what to feed.
        beta: β (λ for ORPO), > 0.
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps:
            (B,) completion log-probs, summed or averaged per ``kind.length_normalized``; paired kinds.
        label_smoothing: ε for cDPO / robust DPO; must stay 0 for the other kinds (a silently
            ignored ε, as in TRL's DPO ``sigmoid``, is a configuration error).
        gamma: SimPO's target margin γ (TRL's ``simpo_gamma``, default 0.5 as there).
        chosen_win_prob, rejected_win_prob: (B,) SPPO's P̂(y ≻ π_t | x).
        policy_logps, reference_logps, label, kl: KTO's unpaired inputs (see ``kto_loss``).
        desirable_weight, undesirable_weight: KTO's λ_D, λ_U.
    Returns:
        ``PolicyLossOutput`` for paired kinds, ``UnpairedPolicyLossOutput`` for KTO (``kind.paired``).
    """
    kind = PolicyLoss(kind)
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if label_smoothing != 0.0 and not kind.uses_label_smoothing:
        raise ValueError(f"policy loss {kind.value!r} does not use label_smoothing (got {label_smoothing})")
    if kind is PolicyLoss.KTO:
        _require(kind, policy_logps=policy_logps, reference_logps=reference_logps, label=label, kl=kl)
        return kto_loss(policy_logps, reference_logps, label, kl, beta, desirable_weight, undesirable_weight)
    _require(kind, policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps)
    if kind is PolicyLoss.SIMPO:
        return simpo_loss(policy_chosen_logps, policy_rejected_logps, beta, gamma)
    if kind is PolicyLoss.ORPO:
        return orpo_loss(policy_chosen_logps, policy_rejected_logps, beta)
    _require(
        kind, reference_chosen_logps=reference_chosen_logps, reference_rejected_logps=reference_rejected_logps
    )
    logps = (policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    if kind is PolicyLoss.DPO:
        return dpo_loss(*logps, beta)
    if kind is PolicyLoss.CDPO:
        return cdpo_loss(*logps, beta, label_smoothing)
    if kind is PolicyLoss.ROBUST:
        return robust_dpo_loss(*logps, beta, label_smoothing)
    if kind in (PolicyLoss.IPO, PolicyLoss.IPO_SUM):
        return ipo_loss(*logps, beta)
    if kind is PolicyLoss.HINGE:
        return hinge_loss(*logps, beta)
    if kind is PolicyLoss.SPPO:
        _require(kind, chosen_win_prob=chosen_win_prob, rejected_win_prob=rejected_win_prob)
        return sppo_loss(*logps, beta, chosen_win_prob, rejected_win_prob)
    if kind is PolicyLoss.SPPO_HARD:
        return sppo_hard_loss(*logps, beta)
    raise ValueError(f"unknown policy loss {kind!r}")
