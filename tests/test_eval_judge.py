"""Tests for genpref.eval.judge_metrics and genpref.eval.paired on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genpref.eval.judge_metrics import (
    accuracy_with_interval,
    best_of_n_chance,
    best_of_n_correct,
    correct_rows,
    kendall_tau_b,
    length_baseline_prob,
    length_bias_table,
    ranking_metrics,
    spearman_rho,
)
from genpref.eval.paired import mcnemar_test, paired_bootstrap
from genpref.eval.stats import wilson_interval

# four rows: chosen longer, chosen shorter, same length, and a reversed label (rejected preferred)
CHOSEN_LEN = [10, 5, 7, 7]
REJECTED_LEN = [5, 10, 7, 3]
LABEL = [1.0, 1.0, 1.0, 0.0]


def test_length_baseline_hand_computed():
    """Longer wins: row 0 right; row 1 wrong; row 2 equal length (a tie: wrong); row 3 the label says
    rejected (length 3) wins but chosen (7) is longer: wrong. Accuracy 1/4."""
    prob = length_baseline_prob(CHOSEN_LEN, REJECTED_LEN)
    assert prob.tolist() == [1.0, 0.0, 0.5, 1.0]
    correct, decisive = correct_rows(prob, LABEL)
    assert correct.tolist() == [True, False, False, False] and decisive.all()
    summary = accuracy_with_interval(correct)
    assert summary["accuracy"] == 0.25 and summary["n"] == 4
    assert summary["ci95"] == pytest.approx(list(wilson_interval(1, 4)))


def test_length_bias_table_hand_computed():
    """Preferred lengths (10, 5, 7, 3) vs the other's (5, 10, 7, 7): longer = row 0, shorter = rows 1
    and 3, same = row 2. With correctness (T, T, F, T): 1/1, 2/2, 0/1."""
    table = length_bias_table([True, True, False, True], CHOSEN_LEN, REJECTED_LEN, LABEL)
    assert table["preferred_longer"]["accuracy"] == 1.0 and table["preferred_longer"]["n"] == 1
    assert table["preferred_shorter"]["accuracy"] == 1.0 and table["preferred_shorter"]["n"] == 2
    assert table["same_length"]["accuracy"] == 0.0 and table["same_length"]["n"] == 1
    assert [table[k]["share"] for k in table] == [0.25, 0.5, 0.25]
    # a 0.5 label has no preferred response: left out everywhere
    half = length_bias_table([True], [10], [5], [0.5])
    assert all(v["n"] == 0 and math.isnan(v["accuracy"]) for v in half.values())


def test_kendall_tau_b_hand_computed():
    """(1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant of 6 pairs → 4/6.
    (1,2,3) vs (1,1,2): sign products 0, 1, 1; P = 3, T_y = 1 → 2 / sqrt(3 · 2)."""
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert kendall_tau_b([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / math.sqrt(6))
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_b([1, 2, 3], [5, 5, 5]))


def test_spearman_rho_hand_computed():
    """(1,2,3,4) vs (1,3,2,4): Σd² = 2 → 1 − 6·2/(4·15) = 0.8.
    (1,2,3) vs (1,1,2): ranks (1.5, 1.5, 3); centred (−1, 0, 1)·(−.5, −.5, 1) = 1.5 over sqrt(2 · 1.5)."""
    assert spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman_rho([1, 2, 3], [1, 1, 2]) == pytest.approx(1.5 / math.sqrt(3))
    assert math.isnan(spearman_rho([1, 1], [1, 2]))


def test_correlations_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.normal(size=7), rng.integers(1, 4, size=7).astype(float)  # y has ties
        if len(set(y)) == 1:
            continue
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
        assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


def test_ranking_metrics_top1_and_undefined_correlations():
    """Prompt 1: the judge's top (index 1, grade 7) is among the tied best (7, 7): right.
    Prompt 2: the judge's top is index 0, grade 2 < 9: wrong. Prompt 3: all grades tied, so τ and
    ρ are undefined there (left out of their means), and any top response is right."""
    result = ranking_metrics(
        [[0.1, 0.9, 0.5], [0.9, 0.1, 0.5], [0.3, 0.2]],
        [[2, 7, 7], [2, 9, 5], [4, 4]],
    )
    assert result["top1"]["accuracy"] == pytest.approx(2 / 3) and result["n"] == 3
    assert result["n_correlation"] == 2
    tau1 = kendall_tau_b([0.1, 0.9, 0.5], [2, 7, 7])  # (1 + 1 + 0) / sqrt(3 · 2)
    tau2 = kendall_tau_b([0.9, 0.1, 0.5], [2, 9, 5])  # every pair reversed: (−1 − 1 − 1) / 3
    assert tau1 == pytest.approx(2 / math.sqrt(6)) and tau2 == pytest.approx(-1.0)
    assert result["kendall_tau"] == pytest.approx((tau1 + tau2) / 2)


def test_best_of_4_hand_computed():
    """RewardBench 2 layout: one chosen (first) vs three rejected; BT rewards give s = r_i − r_j."""

    def matrix(r):
        r = np.asarray(r, dtype=float)
        return r[:, None] - r[None, :]

    assert best_of_n_correct(matrix([3, 1, 0, 2]), n_chosen=1)  # chosen highest
    assert not best_of_n_correct(matrix([2, 1, 0, 3]), n_chosen=1)  # a rejected scores higher
    assert not best_of_n_correct(matrix([3, 3, 0, 1]), n_chosen=1)  # a tie is wrong
    assert best_of_n_correct(matrix([3, 2, 1, 0]), n_chosen=2)  # both chosen above both rejected
    assert not best_of_n_correct(matrix([3, 0, 1, 2]), n_chosen=2)
    assert best_of_n_chance(1, 3) == 0.25 and best_of_n_chance(2, 2) == pytest.approx(1 / 6)
    with pytest.raises(ValueError):
        best_of_n_correct(matrix([1, 2]), n_chosen=2)


def test_mcnemar_exact_hand_computed():
    """b = 1 (only A right), c = 6 (only B right): p = 2 (C(7,0) + C(7,1)) / 2^7 = 16/128."""
    a = [1] + [0] * 6 + [1] * 5 + [0] * 3
    b = [0] + [1] * 6 + [1] * 5 + [0] * 3
    result = mcnemar_test(a, b)
    assert (result["only_a_correct"], result["only_b_correct"]) == (1, 6)
    assert (result["both_correct"], result["both_wrong"], result["n"]) == (5, 3, 15)
    assert result["method"] == "exact" and result["p_value"] == pytest.approx(0.125)
    assert mcnemar_test(b, a)["p_value"] == pytest.approx(0.125)  # symmetric
    assert mcnemar_test([1, 0], [1, 0])["p_value"] == 1.0  # never disagree


def test_mcnemar_chi2_hand_computed():
    """b = 10, c = 20: χ² = (|10 − 20| − 1)² / 30 = 2.7; p = erfc(sqrt(1.35)) = 0.100348."""
    a = [1] * 10 + [0] * 20
    b = [0] * 10 + [1] * 20
    result = mcnemar_test(a, b)
    assert result["method"] == "chi2" and result["statistic"] == pytest.approx(2.7)
    assert result["p_value"] == pytest.approx(0.1003482, abs=1e-6)
    with pytest.raises(ValueError, match="same rows"):
        mcnemar_test([1, 0], [1])


def test_paired_bootstrap_hand_computed():
    """d = (1, 0): a replicate's mean is 0, ½ or 1 with probabilities ¼, ½, ¼, so the 95 % interval is
    [0, 1] and P(difference <= 0) ≈ ¼. Identical judges: difference 0 in every replicate."""
    result = paired_bootstrap([0, 1], [1, 1], n_boot=20_000, seed=1)
    assert result["difference"] == 0.5
    assert result["ci95"] == [0.0, 1.0]
    assert result["prob_b_not_better"] == pytest.approx(0.25, abs=0.01)
    assert paired_bootstrap([0, 1], [1, 1], n_boot=500, seed=1) == paired_bootstrap(
        [0, 1], [1, 1], n_boot=500, seed=1
    )
    same = paired_bootstrap([1, 0, 1], [1, 0, 1], n_boot=100)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0] and same["prob_b_not_better"] == 1.0
