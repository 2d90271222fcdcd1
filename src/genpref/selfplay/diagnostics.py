"""Per-iteration self-play diagnostics: the target distribution, η from the target scale, how well
π_{t+1} fitted its regression, and KL estimates between consecutive iterates.

All functions are pure (lists / tensors in, plain dicts out) and tested on hand-computed values.
Notation: ρ_i = log π_{t+1}(y_i|x) − log π_t(y_i|x) for the training samples y_i ~ π_t, g_i the
target (SPPO: P̂ − ½; GPO: s(y ≻ π_t)), η the step size; training minimises Σ (ρ_i − η g_i)².
"""

from __future__ import annotations

import math

import torch


def summarize_targets(targets: list[float]) -> dict[str, float]:
    """Mean, standard deviation (population), extremes, quartiles and mean |g| of the targets."""
    t = torch.tensor(targets, dtype=torch.float64)
    q = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {
        "n": len(targets),
        "mean": float(t.mean()),
        "std": float(t.std(unbiased=False)),
        "min": float(t.min()),
        "q25": q[0],
        "median": q[1],
        "q75": q[2],
        "max": float(t.max()),
        "mean_abs": float(t.abs().mean()),
    }


def eta_from_targets(targets: list[float], target_nats: float, fallback: float) -> float:
    """η such that η · std(g) = ``target_nats`` (population std over all samples of the iteration).

    A judge whose probabilities sit near ½ gives targets of a few hundredths, for which a fixed η
    asks for almost no change; a sharp judge gives targets of several units, for which the same η asks
    for hundreds of nats. Scaling η by the targets' spread fixes the size of the requested step.
    Returns ``fallback`` when every target is equal (std 0: nothing to learn either way)."""
    std = float(torch.tensor(targets, dtype=torch.float64).std(unbiased=False))
    return target_nats / std if std > 0 else fallback


def fit_diagnostics(log_ratio: list[float], targets: list[float], eta: float) -> dict[str, float]:
    """How well the trained policy's log-ratios ρ follow the requested η·g.

    * ``corr``: Pearson correlation of ρ and g (direction learnt: 1 is perfect, 0 nothing);
    * ``slope``: least-squares slope of ρ on η·g (1: the requested size; ≪ 1: under-fitted steps);
    * ``r2``: 1 − Σ(ρ − ηg)² / Σ(ηg − mean ηg)², the share of the requested variation achieved (can be
      negative when ρ is far off);
    * ``rmse_target_units``: √mean((ρ/η − g)²), the square loss in the targets' own units;
    * ``mean_log_ratio`` and ``requested_std`` = std(η g) in nats.
    """
    rho = torch.tensor(log_ratio, dtype=torch.float64)
    want = eta * torch.tensor(targets, dtype=torch.float64)
    rc, wc = rho - rho.mean(), want - want.mean()
    var_w, var_r = float((wc * wc).sum()), float((rc * rc).sum())
    cov = float((rc * wc).sum())
    ss_res = float(((rho - want) ** 2).sum())
    return {
        "corr": cov / math.sqrt(var_r * var_w) if var_r > 0 and var_w > 0 else 0.0,
        "slope": cov / var_w if var_w > 0 else 0.0,
        "r2": 1.0 - ss_res / var_w if var_w > 0 else 0.0,
        "rmse_target_units": math.sqrt(ss_res / len(rho)) / eta,
        "mean_log_ratio": float(rho.mean()),
        "requested_std": float(want.std(unbiased=False)),
    }


def kl_estimates(log_ratio: list[float], groups: list[int]) -> dict[str, float]:
    """KL between π_{t+1} and π_t from samples y ~ π_t and ρ = log π_{t+1}(y) − log π_t(y).

    * ``kl_old_new`` = KL(π_t ‖ π_{t+1}) ≈ mean(−ρ) (plain Monte Carlo);
    * ``kl_new_old`` = KL(π_{t+1} ‖ π_t) ≈ per prompt Σ_i w_i ρ_i / Σ_i w_i with w = e^ρ (self-normalised
      importance sampling over that prompt's samples), averaged over prompts.

    Both are exact in expectation only when the samples come from π_t itself (sampling temperature 1,
    no top-p); with a tempered sampler they are indicative. ``groups``: the prompt index of each sample.
    """
    rho = torch.tensor(log_ratio, dtype=torch.float64)
    g = torch.tensor(groups)
    per_prompt = []
    for key in g.unique():
        r = rho[g == key]
        w = torch.softmax(r, 0)  # self-normalised e^ρ
        per_prompt.append(float((w * r).sum()))
    return {"kl_old_new": float((-rho).mean()), "kl_new_old": sum(per_prompt) / len(per_prompt)}


def target_agreement(prob_matrices: list, logit_matrices: list, include_self: bool = True) -> float:
    """Pearson correlation between SPPO's targets (mean_j P_ij − ½) and GPO's (mean_j s_ij) over all
    samples: near 1 when the judge's probabilities stay near ½ (σ(s) − ½ ≈ s/4 there), in which case
    the two algorithms ask for the same step up to scale (and coincide once η is set by the scale)."""
    sppo, gpo = [], []
    for p, s in zip(prob_matrices, logit_matrices):
        p, s = torch.tensor(p, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
        k = p.shape[0]
        if include_self:
            sppo += (p.mean(1) - 0.5).tolist()
            gpo += s.mean(1).tolist()
        else:
            sppo += ((p.sum(1) - p.diagonal()) / (k - 1) - 0.5).tolist()
            gpo += ((s.sum(1) - s.diagonal()) / (k - 1)).tolist()
    a, b = torch.tensor(sppo), torch.tensor(gpo)
    a, b = a - a.mean(), b - b.mean()
    denom = float(a.norm() * b.norm())
    return float((a * b).sum()) / denom if denom > 0 else 0.0
