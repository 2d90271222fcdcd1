"""Tests for genpref.eval.metrics: hand-computed values and invariants."""

import math

import numpy as np
import pytest
import torch

from genpref.eval.metrics import (
    OVERALL,
    expected_calibration_error,
    pairwise_consistency,
    per_subset_metrics,
    preference_metrics,
)


def test_accuracy_ties_are_wrong_and_half_labels_are_excluded():
    """prob = [.9, .5, .3, .2, .7], label = [1, 1, 1, 0, .5].

    Decisive rows 0-3: .9 > .5 right; .5 is a tie, wrong; .3 wrong; label 0 and .2 < .5 right.
    accuracy = 2 / 4; row 4 (label .5) is left out of accuracy but counted in n and the mean.
    mean_prob_chosen = 2.6 / 5 = 0.52.
    """
    out = preference_metrics([0.9, 0.5, 0.3, 0.2, 0.7], [1.0, 1.0, 1.0, 0.0, 0.5])
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["mean_prob_chosen"] == pytest.approx(0.52)
    assert out["n"] == 5


def test_accuracy_is_nan_when_every_label_is_a_half():
    assert math.isnan(preference_metrics([0.2, 0.9], [0.5, 0.5])["accuracy"])


def test_default_label_is_chosen_wins():
    prob = [0.9, 0.4, 0.6]
    assert preference_metrics(prob) == preference_metrics(prob, [1.0, 1.0, 1.0])


def test_log_loss_hand_computed():
    """Hard: −(log .8 + log(1 − .4)) / 2 = (0.2231436 + 0.5108256) / 2 = 0.3669846.

    Soft: −(.75 log .8 + .25 log .2) = .75 · 0.2231436 + .25 · 1.6094379 = 0.5697172.
    """
    assert preference_metrics([0.8, 0.4], [1.0, 0.0])["log_loss"] == pytest.approx(0.3669846, abs=1e-6)
    assert preference_metrics([0.8], [0.75])["log_loss"] == pytest.approx(0.5697172, abs=1e-6)


def test_log_loss_is_clamped():
    """p = 0 with label 1 costs −log(1e-7) = 16.1181, not infinity."""
    assert preference_metrics([0.0], [1.0])["log_loss"] == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert preference_metrics([1.0], [0.0])["log_loss"] == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_expected_calibration_error_hand_computed():
    """prob = [.2, .2, .8, .8], outcome = [0, 1, 1, 1], 10 bins.

    Bin 2: mean p .2, mean y .5, gap .3, weight 1/2. Bin 8: mean p .8, mean y 1, gap .2, weight 1/2.
    ECE = .5 · .3 + .5 · .2 = 0.25.
    """
    assert expected_calibration_error([0.2, 0.2, 0.8, 0.8], [0, 1, 1, 1], 10) == pytest.approx(0.25)


def test_expected_calibration_error_one_bin_is_the_gap_of_the_means():
    """With one bin ECE = |mean y − mean p| = |2/3 − (.1 + .5 + 1) / 3| = |2/3 − 1.6/3| = 0.4/3."""
    assert expected_calibration_error([0.1, 0.5, 1.0], [0, 1, 1], 1) == pytest.approx(0.4 / 3)


def test_expected_calibration_error_puts_prob_one_in_last_bin():
    assert expected_calibration_error([1.0, 1.0], [1, 1], 10) == pytest.approx(0.0)


def test_ece_uses_the_symmetrised_set():
    """prob = [.9, .6], hard labels. Symmetrised: (.9, 1), (.1, 0), (.6, 1), (.4, 0), one per bin.

    Gaps .1, .1, .4, .4, each weight 1/4: ECE = 1.0 / 4 = 0.25.
    """
    assert preference_metrics([0.9, 0.6], n_bins=10)["ece"] == pytest.approx(0.25)


def test_ece_is_zero_for_a_calibrated_model():
    """All p = .75 with 3 of 4 chosen winning: bin of .75 has mean y .75, its mirror .25 has .25."""
    out = preference_metrics([0.75] * 4, [1.0, 1.0, 1.0, 0.0])
    assert out["ece"] == pytest.approx(0.0, abs=1e-12)


def test_metrics_are_invariant_to_swapping_chosen_and_rejected():
    """Relabelling each pair the other way round (p → 1 − p, y → 1 − y) changes no metric."""
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.01, 0.99, size=200)
    label = rng.uniform(size=200)
    a = preference_metrics(prob, label)
    b = preference_metrics(1.0 - prob, 1.0 - label)
    for key in ("accuracy", "log_loss", "ece"):
        assert a[key] == pytest.approx(b[key], abs=1e-9), key
    assert a["mean_prob_chosen"] == pytest.approx(1.0 - b["mean_prob_chosen"])


def test_torch_and_numpy_inputs_agree():
    prob = [0.9, 0.3, 0.55, 0.1]
    label = [1.0, 0.0, 1.0, 0.25]
    expected = preference_metrics(np.array(prob), np.array(label))
    got = preference_metrics(torch.tensor(prob, dtype=torch.float64), torch.tensor(label))
    assert got == pytest.approx(expected)
    assert all(isinstance(v, (float, int)) for v in got.values())


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        preference_metrics([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preference_metrics([1.5])
    with pytest.raises(ValueError, match="1-D"):
        preference_metrics([[0.5]])
    with pytest.raises(ValueError, match="empty"):
        preference_metrics([])
    with pytest.raises(ValueError, match="NaN"):
        preference_metrics([float("nan")])


def test_per_subset_metrics_slices_and_orders():
    prob = np.array([0.9, 0.2, 0.7, 0.4, 0.6])
    subsets = ["b", "a", None, "b", "a"]
    out = per_subset_metrics(prob, subsets)
    assert list(out) == [OVERALL, "a", "b"]
    assert out[OVERALL] == preference_metrics(prob)
    assert out["a"] == preference_metrics(prob[[1, 4]])
    assert out["b"] == preference_metrics(prob[[0, 3]])
    # The None row is only in the overall count.
    assert out[OVERALL]["n"] == 5
    assert out["a"]["n"] + out["b"]["n"] == 4


def test_per_subset_metrics_passes_labels_per_row():
    out = per_subset_metrics([0.9, 0.2], ["x", "y"], label=[1.0, 0.0])
    assert out["x"]["accuracy"] == 1.0
    assert out["y"]["accuracy"] == 1.0


def test_per_subset_metrics_rejects_reserved_and_mismatched_names():
    with pytest.raises(ValueError, match="reserved"):
        per_subset_metrics([0.9], [OVERALL])
    with pytest.raises(ValueError, match="subset names"):
        per_subset_metrics([0.9, 0.1], ["a"])


def test_pairwise_consistency_hand_computed():
    """Pairs (P(a≻b), P(b≻a)):

    (.7, .3): deviation 0, both orders pick a.
    (.6, .6): deviation .2, a then b: disagree.
    (.5, .5): deviation 0, tie both ways: agree.
    (.2, .9): deviation .1, both pick b.
    (.5, .7): deviation .2, tie then b: disagree.
    mean = .5 / 5 = .1, max = .2, disagreement = 2 / 5.
    """
    out = pairwise_consistency([0.7, 0.6, 0.5, 0.2, 0.5], [0.3, 0.6, 0.5, 0.9, 0.7])
    assert out["mean_abs_deviation"] == pytest.approx(0.1)
    assert out["max_abs_deviation"] == pytest.approx(0.2)
    assert out["order_disagreement"] == pytest.approx(0.4)
    assert out["n"] == 5


def test_pairwise_consistency_is_zero_for_an_antisymmetric_model():
    """P(b≻a) = 1 − P(a≻b) (e.g. Bradley-Terry) is perfectly order-consistent."""
    prob_ab = torch.rand(100, generator=torch.Generator().manual_seed(0))
    out = pairwise_consistency(prob_ab, 1.0 - prob_ab)
    assert out["max_abs_deviation"] == pytest.approx(0.0, abs=1e-6)
    assert out["order_disagreement"] == 0.0


def test_pairwise_consistency_position_biased_model_always_disagrees():
    """A model that always prefers the first position picks a different winner in each order."""
    out = pairwise_consistency([0.8, 0.9], [0.8, 0.9])
    assert out["order_disagreement"] == 1.0
    assert out["mean_abs_deviation"] == pytest.approx((0.6 + 0.8) / 2)
