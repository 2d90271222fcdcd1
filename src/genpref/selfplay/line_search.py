"""The gradient solver's update, scaled to the step length its regression asks for
(``SelfPlayConfig.solver: line_search``).

SPPO and GPO fit, each iteration, L(θ) = Σ_i w_i (ρ_i(θ) − η·g_i)² with ρ_i = log π_θ(y_i|x_i) −
log π_t(y_i|x_i) (2405.00675 Eq. 3.6; 2410.02197 §5). A few optimiser steps at a fixed learning rate
move the log-ratios by an amount that depends on the size of that iteration's gradients, not on η:
in ``genpref bench nash``, measured on the policy's exact category probabilities, one SGD step realised
anything from 0 to 3 × the asked η from one iteration to the next, so the iterates did not follow
multiplicative weights at the asked rate.

The line search keeps the optimiser's direction and fixes its length. With Δθ the update the
optimiser made and δ_i = ρ_i(θ_t + Δθ) its measured effect on each row (one no-grad forward pass; ρ = 0
at θ_t), the step θ_t + β Δθ moves ρ_i by β δ_i to first order, and the β that minimises the
linearised loss is the least-squares (Cauchy) step length

    β* = Σ_i w_i η g_i δ_i / Σ_i w_i δ_i²,

clipped to [0, ``max_scale``]. For a gradient direction Σ w η g δ > 0 to first order, so β* > 0 unless
the trial step was far outside the linear regime. Unlike the Gauss-Newton solver
(``genpref.selfplay.gauss_newton``) it does not fit every sampled row exactly: the direction is the
gradient's, which also moves unsampled answers that resemble the sampled ones.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cauchy_step_length(delta: Tensor, weights: Tensor, target: Tensor) -> float:
    """β* = Σ w t δ / Σ w δ²: the scale of a step whose first-order effect on the rows is ``delta`` that
    brings them closest (weighted least squares) to ``target``.

    Args:
        delta: (N,) change of each row's log-ratio made by the trial step.
        weights: (N,) loss weights w_i ≥ 0.
        target: (N,) the change the loss asks for (η g_i at θ_t).
    Returns:
        β* (0.0 when the trial step changed nothing).

    Example: δ = (1, 2), w = 1, t = (2, 4) → β* = (2 + 8) / (1 + 4) = 2.
    """
    d, w, t = delta.double(), weights.double(), target.double()
    denominator = float((w * d * d).sum())
    return float((w * t * d).sum()) / denominator if denominator > 0 else 0.0


def log_ratios(logps: Tensor, counts: Tensor, ref_logps: Tensor, length_normalized: bool) -> Tensor:
    """(N,) ρ_i = log π_θ(y_i|x_i) − log π_t(y_i|x_i) from summed log-probs ``logps`` (N,) and the
    recorded ``ref_logps`` (N,), divided by the token ``counts`` (N,) for LN variants; float64."""
    ratio = logps.double() - ref_logps.double()
    return ratio / counts.clamp_min(1).double() if length_normalized else ratio


@torch.no_grad()
def scale_update(params: list[torch.nn.Parameter], before: list[Tensor], beta: float) -> None:
    """θ ← θ_t + β (θ − θ_t) for each parameter (in place); ``before``: θ_t, same order."""
    for p, p0 in zip(params, before):
        p.sub_(p0).mul_(beta).add_(p0)


def finish_line_search(
    cfg, acc, lm, tokenizer, items: list, eta: float, params: list, before: list, result, save_final: bool
):
    """``solver: line_search``: scale the update the loop made (θ − θ_t) to the least-squares step
    length on ``items``, log it, and save ``final`` if asked. ``cfg``: the ``SelfPlayConfig``; ``params``
    and ``before``: the trainable parameters and their values at θ_t; ``result``: the loop's LoopResult."""
    from genpref.atomic_io import atomic_dir
    from genpref.policy.model import save_policy
    from genpref.policy.reference import compute_logps
    from genpref.policy.sequences import resolve_packing

    logps, counts = compute_logps(
        lm,
        [it.seq for it in items],
        batch_size=max(1, cfg.train.batch_size),
        packing=resolve_packing(cfg.engine.packing, lm),
        pad_id=tokenizer.pad_token_id,
        progress=False,
        share_prompt=cfg.engine.share_prompt,  # each prompt once for its samples, as in training
    )
    ref = torch.tensor([it.ref_logp for it in items], dtype=torch.float64)
    delta = log_ratios(logps, counts, ref, cfg.length_normalized)  # (N,) what the update did to each row
    weights = torch.tensor([it.weight for it in items], dtype=torch.float64)
    wanted = eta * torch.tensor([it.target for it in items], dtype=torch.float64)
    raw = cauchy_step_length(delta, weights, wanted)
    beta = min(max(raw, 0.0), cfg.line_search_max_scale)
    scale_update(params, before, beta)
    result.metrics.log(result.steps, line_search_scale=beta, line_search_scale_unclipped=raw)
    result.solver.update(line_search_scale=beta, line_search_scale_unclipped=raw)
    if save_final and acc.is_main_process:
        with atomic_dir(result.final_dir) as tmp:
            save_policy(lm, tokenizer, tmp)
    return result
