"""Metrics for a preference model's P(chosen ≻ rejected) on held-out comparisons.

All functions are pure: they take 1-D float tensors (any device or dtype), numpy arrays or lists,
and return plain Python floats in dicts. They never reduce over anything but the rows they are
given, so callers can slice by subset, seed or checkpoint and call them again.

Conventions, shared with ``genpref.data.PreferenceExample``:

- ``prob_chosen[i]`` is the model's P(chosen ≻ rejected) for row ``i``, shape ``(N,)``.
- ``label[i]`` is the target probability that chosen wins, shape ``(N,)``; 1.0 for a hard label
  (the default), anything in [0, 1] for a soft one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

OVERALL = "all"
"""Key under which :func:`per_subset_metrics` reports the metrics over every row."""

LOG_LOSS_EPS = 1e-7
"""Probabilities are clamped to ``[eps, 1 - eps]`` before the log, so one confident miss is finite."""


def _as_1d_float64(x: Any, name: str) -> np.ndarray:
    """Copy a tensor / array / sequence to a CPU float64 numpy array of shape ``(N,)``."""
    if isinstance(x, torch.Tensor):
        # float64 first: bfloat16 has no numpy dtype, and float32 sums drift on large N.
        array = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        array = np.asarray(x, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _as_probability(x: Any, name: str) -> np.ndarray:
    array = _as_1d_float64(x, name)
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got range [{array.min()}, {array.max()}]")
    return array


def _prob_and_label(prob_chosen: Any, label: Any | None) -> tuple[np.ndarray, np.ndarray]:
    prob = _as_probability(prob_chosen, "prob_chosen")
    target = np.ones_like(prob) if label is None else _as_probability(label, "label")
    if target.shape != prob.shape:
        raise ValueError(f"label has shape {target.shape} but prob_chosen has shape {prob.shape}")
    if prob.size == 0:
        raise ValueError("no rows to evaluate: prob_chosen is empty")
    return prob, target


def expected_calibration_error(prob: Any, outcome: Any, n_bins: int = 10) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins on [0, 1].

    ``ECE = Σ_b (|B_b| / N) · |mean(outcome in B_b) − mean(prob in B_b)|`` (Naeini et al., AAAI 2015,
    "Obtaining Well Calibrated Probabilities Using Bayesian Binning"; Guo et al., ICML 2017, Eq. 3).
    Bin ``b`` holds ``b / n_bins <= prob < (b + 1) / n_bins``; the last bin also holds ``prob == 1``.

    Args:
        prob: predicted probabilities of the positive outcome, shape ``(N,)``, in [0, 1].
        outcome: observed outcome, shape ``(N,)``: 0/1, or a soft target in [0, 1] (its bin mean
            is then the empirical frequency the prediction is compared with).
        n_bins: number of equal-width bins (>= 1).

    Returns:
        ECE in [0, 1].
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = _as_probability(prob, "prob")
    y = _as_probability(outcome, "outcome")
    if p.shape != y.shape:
        raise ValueError(f"outcome has shape {y.shape} but prob has shape {p.shape}")
    if p.size == 0:
        raise ValueError("no rows to evaluate: prob is empty")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)  # (N,)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)  # (n_bins,)
    # Σ_{i in b} (y_i − p_i) / N summed per bin = (|B_b| / N) · (mean y − mean p) in bin b.
    gap = np.bincount(bins, weights=y - p, minlength=n_bins)  # (n_bins,)
    return float(np.sum(np.abs(gap[count > 0])) / p.size)


def preference_metrics(prob_chosen: Any, label: Any | None = None, n_bins: int = 10) -> dict[str, float]:
    """Accuracy, log loss and calibration of P(chosen ≻ rejected) against the labels.

    Args:
        prob_chosen: the model's P(chosen ≻ rejected), shape ``(N,)``, in [0, 1].
        label: target probability that chosen wins, shape ``(N,)``; default all 1.0.
        n_bins: bins for the expected calibration error.

    Returns:
        ``accuracy``: fraction of decisive rows ranked the right way. A row with ``label > 0.5`` is
            correct iff ``prob_chosen > 0.5``, one with ``label < 0.5`` iff ``prob_chosen < 0.5``. A tie
            (``prob_chosen == 0.5``) is wrong, as in RewardBench (``1 if chosen > rejected else 0``).
            Rows with ``label == 0.5`` have no right answer and are left out; NaN if no row is left.
        ``mean_prob_chosen``: mean of ``prob_chosen`` over all rows.
        ``log_loss``: mean binary cross-entropy ``−[y log p + (1 − y) log(1 − p)]`` with ``p`` clamped
            to ``[1e-7, 1 − 1e-7]``.
        ``ece``: expected calibration error on the *symmetrised* set, where every row contributes both
            ``(p, y)`` and ``(1 − p, 1 − y)``. Why: with hard labels every outcome is "chosen wins",
            so plain ECE would only reward pushing every probability to 1. A comparison has no
            canonical order, and the symmetrised set is what the model would see if each pair were
            also shown the other way round, which gives calibration both outcomes to be measured on.
        ``n``: number of rows (including those left out of ``accuracy``).
    """
    prob, target = _prob_and_label(prob_chosen, label)
    decisive = target != 0.5  # (N,)
    chosen_should_win = target > 0.5  # (N,)
    correct = np.where(chosen_should_win, prob > 0.5, prob < 0.5)  # (N,) bool; ties are wrong
    accuracy = float(correct[decisive].mean()) if decisive.any() else math.nan

    p = np.clip(prob, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    log_loss = float(np.mean(-(target * np.log(p) + (1.0 - target) * np.log1p(-p))))

    ece = expected_calibration_error(
        np.concatenate([prob, 1.0 - prob]), np.concatenate([target, 1.0 - target]), n_bins
    )
    return {
        "accuracy": accuracy,
        "mean_prob_chosen": float(prob.mean()),
        "log_loss": log_loss,
        "ece": ece,
        "n": int(prob.size),
    }


def per_subset_metrics(
    prob_chosen: Any,
    subsets: Sequence[str | None],
    label: Any | None = None,
    n_bins: int = 10,
) -> dict[str, dict[str, float]]:
    """:func:`preference_metrics` over all rows and within each subset.

    Args:
        prob_chosen: the model's P(chosen ≻ rejected), shape ``(N,)``.
        subsets: subset name of each row, length ``N``. ``None`` rows count only towards the
            overall entry.
        label: target probability that chosen wins, shape ``(N,)``; default all 1.0.
        n_bins: bins for the expected calibration error.

    Returns:
        ``{OVERALL: metrics over all N rows, name: metrics over that subset's rows, ...}``, the
        overall entry first, then the subset names in sorted order (stable across runs).
        Raises ``ValueError`` if a subset is itself named ``"all"``.
    """
    prob, target = _prob_and_label(prob_chosen, label)
    if len(subsets) != prob.size:
        raise ValueError(f"got {len(subsets)} subset names for {prob.size} rows")
    names = sorted({name for name in subsets if name is not None})
    if OVERALL in names:
        raise ValueError(f"subset name {OVERALL!r} is reserved for the overall metrics; rename it")
    result = {OVERALL: preference_metrics(prob, target, n_bins)}
    for name in names:
        rows = np.array([row_name == name for row_name in subsets], dtype=bool)  # (N,)
        result[name] = preference_metrics(prob[rows], target[rows], n_bins)
    return result


def pairwise_consistency(prob_ab: Any, prob_ba: Any) -> dict[str, float]:
    """How far a pairwise model (e.g. PairPM) is from being order-consistent.

    An order-consistent model satisfies ``P(a ≻ b) + P(b ≻ a) = 1`` for every pair.

    Args:
        prob_ab: P(a ≻ b) with ``a`` shown first, shape ``(N,)``.
        prob_ba: P(b ≻ a) for the same pairs with ``b`` shown first, shape ``(N,)``.

    Returns:
        ``mean_abs_deviation``: mean of ``|P(a ≻ b) + P(b ≻ a) − 1|``.
        ``max_abs_deviation``: the largest such deviation.
        ``order_disagreement``: fraction of pairs where the two orders pick different winners. Each
            order's winner is ``a``, ``b`` or a tie (probability exactly 0.5), so the orders disagree
            iff ``sign(P(a ≻ b) − ½) ≠ sign(½ − P(b ≻ a))``. Off exact ties this is
            ``(P(a ≻ b) > ½) == (P(b ≻ a) > ½)``; a pair that is 0.5 both ways agrees (a tie both ways).
        ``n``: number of pairs.
    """
    ab = _as_probability(prob_ab, "prob_ab")
    ba = _as_probability(prob_ba, "prob_ba")
    if ab.shape != ba.shape:
        raise ValueError(f"prob_ba has shape {ba.shape} but prob_ab has shape {ab.shape}")
    if ab.size == 0:
        raise ValueError("no pairs to evaluate: prob_ab is empty")
    deviation = np.abs(ab + ba - 1.0)  # (N,)
    disagree = np.sign(ab - 0.5) != np.sign(0.5 - ba)  # (N,) bool
    return {
        "mean_abs_deviation": float(deviation.mean()),
        "max_abs_deviation": float(deviation.max()),
        "order_disagreement": float(disagree.mean()),
        "n": int(ab.size),
    }
