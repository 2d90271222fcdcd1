"""Self-play square losses: SPPO (Wu et al., arXiv 2405.00675) and GPO (Zhang et al., arXiv 2410.02197 §5).

Both regress each sampled response's log-ratio against the previous policy π_t onto a target:

    ℓ(y) = ( log π_θ(y|x) − log π_t(y|x) − η · g(y) )²

* SPPO (Eq. 3.6 of 2405.00675 / Algorithm 1): g = P̂(y ≻ π_t | x) − ½, P̂ the mean win probability of
  y against the K samples of π_t.
* GPO (Eq. 5.3 of 2410.02197): g = s(y ≻ π_t | x), the GPM preference score of y against π_t's mixture.
* LN-GPO: the log-ratio is divided by the response length |y| (length-normalised).
"""

from __future__ import annotations

from torch import Tensor


def selfplay_square_loss(
    policy_logps: Tensor,
    reference_logps: Tensor,
    target: Tensor,
    eta: float,
    lengths: Tensor | None = None,
) -> Tensor:
    """(ρ − η·g)² per response, ρ = log π_θ(y|x) − log π_t(y|x) (÷ |y| when ``lengths`` is given).

    Args:
        policy_logps: (N,) summed log π_θ(y|x).
        reference_logps: (N,) summed log π_t(y|x) (recorded at generation time).
        target: (N,) g(y): P̂ − ½ for SPPO, s(y ≻ π_t) for GPO (already clipped by the caller if wanted).
        eta: η (the paper's recipe uses η = 1000 for 8B models; β = 1/η).
        lengths: (N,) response token counts for the length-normalised variant (LN-GPO), or None.
    Returns:
        (N,) per-response losses.
    """
    ratio = policy_logps - reference_logps.to(policy_logps.dtype)
    if lengths is not None:
        ratio = ratio / lengths.clamp_min(1).to(ratio.dtype)
    return (ratio - eta * target.to(ratio.dtype)) ** 2


def sppo_target(win_prob: Tensor) -> Tensor:
    """SPPO's regression target P̂(y ≻ π_t) − ½ ∈ [−½, ½]."""
    return win_prob - 0.5
