"""Judge metrics beyond accuracy: intervals, the length baseline, the length-bias table, ranking
correlations and best-of-N accuracy.

Pure functions over 1-D arrays / tensors / lists; results are plain Python values.

A judge that does not beat "the longer response wins" has learnt length, not preference. So every
accuracy is reported with its 95 % Wilson interval, beside that baseline on the same rows, and split by
whether the preferred response is the longer or the shorter one (Singhal et al., 2023, "A Long Way to
Go: Investigating Length Correlations in RLHF", arXiv 2310.03716, measure the same bias).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from genpref.eval.metrics import _as_1d_float64
from genpref.eval.stats import wilson_interval


def correct_rows(prob_chosen: Any, label: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-row correctness under genpref's accuracy rule, and which rows are decisive.

    A row with ``label > 0.5`` is correct iff ``prob_chosen > 0.5``, one with ``label < 0.5`` iff
    ``prob_chosen < 0.5``; a tie (0.5) is wrong. Rows with ``label == 0.5`` are not decisive.

    Returns:
        ``(correct, decisive)``, both boolean, shape ``(N,)``.
    """
    prob = _as_1d_float64(prob_chosen, "prob_chosen")
    target = np.ones_like(prob) if label is None else _as_1d_float64(label, "label")
    correct = np.where(target > 0.5, prob > 0.5, prob < 0.5)  # (N,)
    return correct, target != 0.5


def accuracy_with_interval(correct: Any, confidence: float = 0.95) -> dict:
    """``{"accuracy", "n", "ci95": [low, high]}`` for 0/1 outcomes, with the Wilson score interval.

    ``accuracy`` is NaN (and the interval [0, 1]) when there are no rows.
    """
    x = np.asarray(correct, dtype=np.float64).reshape(-1)
    n = int(x.size)
    successes = float(x.sum())
    low, high = wilson_interval(successes, n, confidence)
    return {"accuracy": successes / n if n else math.nan, "n": n, "ci95": [low, high]}


def length_baseline_prob(chosen_len: Any, rejected_len: Any) -> np.ndarray:
    """The "longer response wins" rule as a P(chosen ≻ rejected): 1, 0, or 0.5 for equal lengths.

    Scored with :func:`correct_rows` like a model, so equal lengths count as wrong and soft or
    reversed labels are handled the same way. Shapes ``(N,)`` → ``(N,)``.
    """
    c = _as_1d_float64(chosen_len, "chosen_len")
    r = _as_1d_float64(rejected_len, "rejected_len")
    return np.where(c > r, 1.0, np.where(c < r, 0.0, 0.5))


def length_bias_table(correct: Any, chosen_len: Any, rejected_len: Any, label: Any | None = None) -> dict:
    """Accuracy split by whether the *preferred* response is the longer one.

    The preferred response is ``chosen`` when ``label > 0.5`` and ``rejected`` when ``label < 0.5``
    (rows with ``label == 0.5`` are left out). A judge that mostly rewards length scores high on
    ``preferred_longer`` and low on ``preferred_shorter``; an unbiased one scores alike on both.

    Args:
        correct: per-row correctness, shape ``(N,)`` (e.g. from :func:`correct_rows`).
        chosen_len, rejected_len: response lengths (any unit), shape ``(N,)``.
        label: target probability that chosen wins, shape ``(N,)``; default all 1.

    Returns:
        ``{"preferred_longer", "preferred_shorter", "same_length"}``, each
        :func:`accuracy_with_interval` over its rows plus ``"share"``: its fraction of the rows.
    """
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    c = _as_1d_float64(chosen_len, "chosen_len")
    r = _as_1d_float64(rejected_len, "rejected_len")
    target = np.ones_like(c) if label is None else _as_1d_float64(label, "label")
    if not ok.shape == c.shape == r.shape == target.shape:
        raise ValueError("correct, chosen_len, rejected_len and label must have the same shape (N,)")
    decisive = target != 0.5
    preferred_len = np.where(target > 0.5, c, r)  # (N,)
    other_len = np.where(target > 0.5, r, c)  # (N,)
    groups = {
        "preferred_longer": preferred_len > other_len,
        "preferred_shorter": preferred_len < other_len,
        "same_length": preferred_len == other_len,
    }
    n = max(int(decisive.sum()), 1)
    table = {}
    for name, rows in groups.items():
        rows = rows & decisive
        table[name] = accuracy_with_interval(ok[rows]) | {"share": float(rows.sum()) / n}
    return table


# ---------------------------------------------------------------- rankings


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..K with ties given the mean of the ranks they span, shape ``(K,)``."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(1, x.size + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def kendall_tau_b(x: Any, y: Any) -> float:
    """Kendall's τ_b between two score vectors of one prompt (Kendall, Biometrika 1945).

    ``τ_b = (C − D) / sqrt((P − T_x)(P − T_y))`` with ``P = K(K−1)/2`` pairs, ``C`` / ``D`` the pairs
    ordered alike / oppositely by x and y, and ``T_x`` / ``T_y`` the pairs tied in x / in y. τ_b (not
    τ_a) because graded answers tie often. NaN when x or y is constant (no order to compare).
    """
    a = _as_1d_float64(x, "x")
    b = _as_1d_float64(y, "y")
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"need two score vectors of the same length >= 2, got {a.shape} and {b.shape}")
    i, j = np.triu_indices(a.size, k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])  # (P,)
    pairs = i.size
    tied_a, tied_b = int((sa == 0).sum()), int((sb == 0).sum())
    denom = math.sqrt((pairs - tied_a) * (pairs - tied_b))
    return float((sa * sb).sum() / denom) if denom > 0 else math.nan


def spearman_rho(x: Any, y: Any) -> float:
    """Spearman's ρ: Pearson correlation of the average ranks (ties share their mean rank).

    NaN when x or y is constant.
    """
    a = _as_1d_float64(x, "x")
    b = _as_1d_float64(y, "y")
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"need two score vectors of the same length >= 2, got {a.shape} and {b.shape}")
    ra, rb = _average_ranks(a) - (a.size + 1) / 2, _average_ranks(b) - (b.size + 1) / 2
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb / denom) if denom > 0 else math.nan


def ranking_metrics(model_scores: Sequence[Any], given_scores: Sequence[Any]) -> dict:
    """Agreement of a judge's scores with the given scores, prompt by prompt, then averaged.

    Args:
        model_scores: per prompt, the judge's score of each of its K responses, shape ``(K,)``
            (for a GPM its score against the uniform mixture of the K, which orders them as BT's
            reward does for BT).
        given_scores: per prompt, the reference scores (e.g. GPT-4 grades), shape ``(K,)``.

    Returns:
        ``kendall_tau`` / ``spearman_rho``: mean over prompts where it is defined (``n_correlation``
        prompts: given scores not all tied); ``top1``: :func:`accuracy_with_interval` of "the judge's
        top response has the highest given score" (any of the tied best counts; the judge's own ties
        go to the first response), over ``n`` prompts.
    """
    if len(model_scores) != len(given_scores):
        raise ValueError(f"{len(model_scores)} score vectors for {len(given_scores)} prompts")
    taus, rhos, top1 = [], [], []
    for pred, given in zip(model_scores, given_scores):
        p, g = _as_1d_float64(pred, "model_scores"), _as_1d_float64(given, "given_scores")
        tau = kendall_tau_b(p, g)
        if not math.isnan(tau):
            taus.append(tau)
            rhos.append(spearman_rho(p, g))
        top1.append(g[int(np.argmax(p))] == g.max())
    return {
        "kendall_tau": float(np.mean(taus)) if taus else math.nan,
        "spearman_rho": float(np.mean(rhos)) if rhos else math.nan,
        "n_correlation": len(taus),
        "top1": accuracy_with_interval(top1),
        "n": len(top1),
    }


def best_of_n_correct(score_matrix: Any, n_chosen: int) -> bool:
    """RewardBench-2-style best-of-N: correct iff every chosen response beats every rejected one.

    The responses are ordered chosen first (``n_chosen`` of them), then rejected. ``score_matrix[i, j]``
    is s(y_i ≻ y_j) (antisymmetric for BT/GPM), shape ``(K, K)``. For a scalar reward model,
    s = r_i − r_j and the rule is RewardBench 2's "the chosen response scores highest" (Malik et al.,
    2025, arXiv 2506.01937): with one chosen and three rejected, chance is 1/4. A tie is wrong.
    """
    s = np.asarray(score_matrix, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or not 1 <= n_chosen < s.shape[0]:
        raise ValueError(f"need a (K, K) matrix and 1 <= n_chosen < K, got {s.shape}, {n_chosen}")
    return bool(np.all(s[:n_chosen, n_chosen:] > 0))


def best_of_n_chance(n_chosen: int, n_rejected: int) -> float:
    """Probability that a random order puts every chosen above every rejected: 1 / C(c + r, c)."""
    return 1.0 / math.comb(n_chosen + n_rejected, n_chosen)
