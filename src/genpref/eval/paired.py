"""Paired significance tests between two judges scored on the same rows (``genpref rm compare``).

Both take per-row correctness of judge A and judge B, shape ``(N,)``, row ``i`` being the same
comparison for both. Pairing matters: two judges' accuracies on the same 200 rows are strongly
correlated, so two separate Wilson intervals that overlap say little; these tests look only at
where the judges differ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MCNEMAR_EXACT_BELOW = 25
"""Use the exact binomial test when fewer discordant rows than this (the chi-square approximation
is poor for small counts; a common rule of thumb, e.g. Agresti, Categorical Data Analysis, §11.1)."""


def _paired(correct_a: Any, correct_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"correct_a has {a.size} rows but correct_b has {b.size}: score the same rows")
    if a.size == 0:
        raise ValueError("no rows to compare")
    return a, b


def mcnemar_test(correct_a: Any, correct_b: Any) -> dict:
    """McNemar's test of equal accuracy on paired rows (McNemar, Psychometrika 1947).

    With ``b`` = rows only A gets right and ``c`` = rows only B gets right, under H0 each discordant
    row is a fair coin: ``b ~ Binomial(b + c, ½)``.

    * ``b + c < 25``: exact two-sided p = min(1, 2 · P(X <= min(b, c))), X ~ Bin(b + c, ½);
    * otherwise: χ² = (|b − c| − 1)² / (b + c) with continuity correction, 1 degree of freedom,
      p = erfc(sqrt(χ² / 2)).

    Returns:
        ``only_a_correct`` (b), ``only_b_correct`` (c), ``both_correct``, ``both_wrong``, ``n``,
        ``method`` ("exact" or "chi2"), ``statistic`` (χ², or b for the exact test) and ``p_value``
        (1.0 when the judges never disagree).
    """
    a, b_ok = _paired(correct_a, correct_b)
    only_a, only_b = int((a & ~b_ok).sum()), int((~a & b_ok).sum())
    discordant = only_a + only_b
    if discordant < MCNEMAR_EXACT_BELOW:
        tail = sum(math.comb(discordant, i) for i in range(min(only_a, only_b) + 1)) / 2.0**discordant
        method, statistic, p_value = "exact", float(only_a), min(1.0, 2.0 * tail)
    else:
        statistic = (abs(only_a - only_b) - 1.0) ** 2 / discordant
        method, p_value = "chi2", math.erfc(math.sqrt(statistic / 2.0))
    return {
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "both_correct": int((a & b_ok).sum()),
        "both_wrong": int((~a & ~b_ok).sum()),
        "n": int(a.size),
        "method": method,
        "statistic": statistic,
        "p_value": p_value,
    }


def paired_bootstrap(
    correct_a: Any, correct_b: Any, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Percentile bootstrap interval for accuracy(B) − accuracy(A), resampling rows (pairs kept).

    Each replicate draws N row indices with replacement and takes the mean of
    ``d_i = correct_b[i] − correct_a[i]`` over them (Efron & Tibshirani, An Introduction to the
    Bootstrap, 1993, ch. 13). Deterministic for a given ``seed``.

    Returns:
        ``difference`` (observed, B − A), ``ci95`` ([low, high] percentiles at (1 ± confidence) / 2),
        ``prob_b_not_better``: fraction of replicates with difference <= 0, ``n``, ``n_boot``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    a, b = _paired(correct_a, correct_b)
    d = b.astype(np.float64) - a.astype(np.float64)  # (N,)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // d.size)  # at most ~2M indices in memory at a time
    reps = np.concatenate(
        [
            d[rng.integers(0, d.size, size=(min(chunk, n_boot - start), d.size))].mean(axis=1)
            for start in range(0, n_boot, chunk)
        ]
    )  # (n_boot,)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return {
        "difference": float(d.mean()),
        "ci95": [float(low), float(high)],
        "prob_b_not_better": float(np.mean(reps <= 0.0)),
        "n": int(d.size),
        "n_boot": int(n_boot),
    }
