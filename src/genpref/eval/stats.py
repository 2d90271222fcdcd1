"""Confidence intervals and a length-controlled win-rate for pairwise judgments.

Pure functions over 1-D tensors / arrays / lists; results are plain Python floats.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from genpref.eval.metrics import _as_1d_float64


def _z(confidence: float) -> float:
    """Two-sided standard-normal quantile: ``P(|Z| <= z) = confidence``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson, JASA 1927; see Brown, Cai &
    DasGupta, Statistical Science 2001, for why it beats the Wald interval).

    With ``p̂ = successes / n`` and ``z`` the two-sided normal quantile::

        centre = (p̂ + z² / 2n) / (1 + z² / n)
        half   = z · sqrt(p̂ (1 − p̂) / n + z² / 4n²) / (1 + z² / n)

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at 0 or n.

    Args:
        successes: number of successes, in [0, n]; may be fractional (ties counted as 0.5).
        n: number of trials (>= 0). With ``n == 0`` nothing is known and the interval is (0, 1).
        confidence: coverage, in (0, 1).

    Returns:
        ``(low, high)`` with ``0 <= low <= successes / n <= high <= 1``.
    """
    z = _z(confidence)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n={n}], got {successes}")
    if n == 0:
        return 0.0, 1.0
    p_hat = successes / n
    denom = 1.0 + z * z / n
    centre = (p_hat + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p_hat * (1.0 - p_hat) / n + z * z / (4.0 * n * n)) / denom
    # At 0 or n successes one end is exactly 0 or 1; assign it rather than trust the rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def mean_confidence_interval(values: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean with a normal-approximation confidence interval.

    ``mean ± z · s / sqrt(n)`` with ``s`` the sample standard deviation (ddof = 1). For a win-rate
    with ties, pass one value per comparison in {0, 0.5, 1}.

    Args:
        values: observations, shape ``(N,)``, N >= 1.
        confidence: coverage, in (0, 1).

    Returns:
        ``(mean, low, high)``; ``low`` and ``high`` are NaN when N == 1 (no spread to estimate).
    """
    z = _z(confidence)
    x = _as_1d_float64(values, "values")
    if x.size == 0:
        raise ValueError("values is empty")
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    half = z * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def _fit_logistic(features: np.ndarray, target: np.ndarray, l2: float, max_iter: int = 100) -> np.ndarray:
    """Ridge-penalised logistic regression with soft targets, by damped Newton's method.

    Minimises ``mean_i[softplus(z_i) − y_i z_i] + (l2 / 2) ||θ||²`` with ``z = Xθ``.

    Args:
        features: design matrix ``X``, shape ``(N, D)``.
        target: targets ``y`` in [0, 1], shape ``(N,)``.
        l2: ridge strength (> 0 keeps θ finite when the data are separable, e.g. all wins).

    Returns:
        ``θ``, shape ``(D,)``.
    """
    n, d = features.shape

    def objective(theta: np.ndarray) -> float:
        z = features @ theta  # (N,)
        return float(np.mean(np.logaddexp(0.0, z) - target * z) + 0.5 * l2 * theta @ theta)

    theta = np.zeros(d)
    value = objective(theta)
    for _ in range(max_iter):
        prob = 1.0 / (1.0 + np.exp(-(features @ theta)))  # (N,)
        grad = features.T @ (prob - target) / n + l2 * theta  # (D,)
        if np.max(np.abs(grad)) < 1e-12:
            break
        hess = (features.T * (prob * (1.0 - prob))) @ features / n + l2 * np.eye(d)  # (D, D)
        step = -np.linalg.solve(hess, grad)  # (D,)
        # Backtracking (Armijo) line search: a full Newton step can overshoot on near-separable data.
        size, slope = 1.0, float(grad @ step)
        while size > 1e-10:
            candidate = objective(theta + size * step)
            if candidate <= value + 1e-4 * size * slope:
                break
            size *= 0.5
        else:
            break  # no decrease possible at float precision: converged
        theta, value = theta + size * step, candidate
    return theta


def length_controlled_winrate(judgments: Any, length_diff: Any, l2: float = 1e-4) -> dict[str, float]:
    """Length-controlled win-rate, a simplified AlpacaEval 2.0 LC (Dubois et al., 2024,
    "Length-Controlled AlpacaEval: A Simple Way to Debias Automatic Evaluators", arXiv 2404.04475).

    Fits ``p(win) = σ(θ0 + θ1 · tanh(length_diff / std(length_diff)))`` by ridge-penalised maximum
    likelihood (damped Newton / IRLS) and reports the win-rate the model would have if its outputs
    were as long as the baseline's, i.e. with the length term set to zero: ``σ(θ0)``.

    Departures from AlpacaEval: its GLM also has per-instruction difficulty terms and a
    model-vs-baseline term fitted across many models; here there is a single comparison and only
    the intercept and the length slope. ``std`` is the sample standard deviation (ddof = 1), as in
    AlpacaEval; if it is zero (or N == 1) the length feature is zero and LC equals the raw rate up
    to the ridge shrinkage.

    Args:
        judgments: P(model's output beats the baseline's) per comparison, shape ``(N,)``, in [0, 1]
            (0/1 wins, 0.5 for ties, or a judge's probability).
        length_diff: model output length minus baseline output length per comparison, shape ``(N,)``
            (any unit: characters or tokens; only its scale-free tanh enters).
        l2: ridge strength on ``(θ0, θ1)`` added to the *mean* log loss. It keeps the fit finite for
            all-wins / all-losses data (then ``σ(θ0)`` is about 0.9993 / 0.0007 at the default) and
            is otherwise negligible.

    Returns:
        ``lc_winrate``: ``σ(θ0)``, in [0, 1]. ``winrate``: mean of ``judgments``.
        ``intercept``: ``θ0``. ``length_coef``: ``θ1``. ``n``: number of comparisons.
    """
    if l2 <= 0.0:
        raise ValueError(f"l2 must be > 0 to keep the fit finite, got {l2}")
    y = _as_1d_float64(judgments, "judgments")
    diff = _as_1d_float64(length_diff, "length_diff")
    if y.shape != diff.shape:
        raise ValueError(f"length_diff has shape {diff.shape} but judgments has shape {y.shape}")
    if y.size == 0:
        raise ValueError("judgments is empty")
    if y.min() < 0.0 or y.max() > 1.0:
        raise ValueError(f"judgments must lie in [0, 1], got range [{y.min()}, {y.max()}]")

    scale = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    length_feature = np.tanh(diff / scale) if scale > 0.0 else np.zeros_like(diff)  # (N,)
    features = np.stack([np.ones_like(diff), length_feature], axis=1)  # (N, 2)
    intercept, length_coef = _fit_logistic(features, y, l2)
    return {
        "lc_winrate": float(1.0 / (1.0 + math.exp(-intercept))),
        "winrate": float(y.mean()),
        "intercept": float(intercept),
        "length_coef": float(length_coef),
        "n": int(y.size),
    }
