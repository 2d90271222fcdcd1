"""Tests for genpref.eval.stats: hand-computed intervals and length-control invariants."""

import math

import numpy as np
import pytest
import torch

from genpref.eval.stats import length_controlled_winrate, mean_confidence_interval, wilson_interval

Z95 = 1.959963984540054


def test_wilson_interval_hand_computed():
    """8 of 10 at 95%: z² = 3.841459, p̂ = .8, denom = 1 + z²/10 = 1.3841459.

    centre = (.8 + z²/20) / denom = 0.9920729 / 1.3841459 = 0.7167402.
    half = z · sqrt(.016 + z²/400) / denom = 1.959964 · 0.1600114 / 1.3841459 = 0.2265777.
    (0.4901625, 0.9433179).
    """
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4901625, abs=1e-6)
    assert high == pytest.approx(0.9433179, abs=1e-6)


def test_wilson_interval_extremes_and_symmetry():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(Z95**2 / (10 + Z95**2))  # closed form at 0 successes
    assert wilson_interval(10, 10)[1] == 1.0
    for s in (0, 2.5, 3, 7):
        a_low, a_high = wilson_interval(s, 10)
        b_low, b_high = wilson_interval(10 - s, 10)
        assert a_low == pytest.approx(1.0 - b_high)
        assert a_high == pytest.approx(1.0 - b_low)
        assert a_low <= s / 10 <= a_high
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_narrows_with_n_and_widens_with_confidence():
    widths = [np.subtract(*wilson_interval(0.6 * n, n)[::-1]) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]
    assert np.subtract(*wilson_interval(6, 10, 0.99)[::-1]) > widths[0]


def test_wilson_interval_rejects_bad_input():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


def test_mean_confidence_interval_hand_computed():
    """values [0, .5, 1, 1]: mean .625; squared deviations .390625 + .015625 + 2 · .140625 = .6875;
    sample var .6875 / 3; se = sqrt(.6875 / 3) / 2 = 0.2393568; half = z · se = 0.4691305."""
    mean, low, high = mean_confidence_interval([0.0, 0.5, 1.0, 1.0])
    half = Z95 * math.sqrt(0.6875 / 3) / 2
    assert half == pytest.approx(0.4691305, abs=1e-6)
    assert (mean, low, high) == pytest.approx((0.625, 0.625 - half, 0.625 + half))


def test_mean_confidence_interval_single_value_and_constant():
    mean, low, high = mean_confidence_interval([0.7])
    assert mean == pytest.approx(0.7) and math.isnan(low) and math.isnan(high)
    assert mean_confidence_interval(torch.ones(5)) == (1.0, 1.0, 1.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_lc_equals_raw_when_length_is_independent():
    rng = np.random.default_rng(0)
    wins = (rng.random(4000) < 0.7).astype(float)
    out = length_controlled_winrate(wins, rng.normal(size=4000) * 300)
    assert out["winrate"] == pytest.approx(wins.mean())
    assert out["lc_winrate"] == pytest.approx(out["winrate"], abs=0.02)
    assert abs(out["length_coef"]) < 0.3


def test_lc_moves_to_half_when_wins_are_explained_by_length():
    """Wins iff the model's output is longer, and the model is longer 68% of the time: the raw
    win-rate is about .68, but at equal length (tanh feature 0) the fitted win-rate is about .5."""
    rng = np.random.default_rng(1)
    diff = rng.normal(size=2000) + 0.5
    wins = (diff > 0).astype(float)
    out = length_controlled_winrate(wins, diff)
    assert out["winrate"] > 0.65
    assert out["lc_winrate"] == pytest.approx(0.5, abs=0.05)
    assert out["length_coef"] > 5.0


def test_lc_recovers_a_known_model():
    """Judgments drawn from σ(1 + 2 · tanh(d / std d)) give θ ≈ (1, 2) and LC ≈ σ(1) = 0.731."""
    rng = np.random.default_rng(2)
    diff = rng.normal(size=20000) * 50
    prob = 1.0 / (1.0 + np.exp(-(1.0 + 2.0 * np.tanh(diff / diff.std(ddof=1)))))
    out = length_controlled_winrate(prob, diff)  # soft judgments: the exact probabilities
    assert out["intercept"] == pytest.approx(1.0, abs=1e-2)
    assert out["length_coef"] == pytest.approx(2.0, abs=1e-2)
    assert out["lc_winrate"] == pytest.approx(_sigmoid(1.0), abs=1e-3)


def test_lc_is_finite_for_all_wins_and_all_losses():
    diff = np.linspace(-100, 100, 50)
    wins = length_controlled_winrate(np.ones(50), diff)
    losses = length_controlled_winrate(np.zeros(50), diff)
    for out in (wins, losses):
        assert all(math.isfinite(v) for v in out.values())
    assert 0.99 < wins["lc_winrate"] < 1.0
    assert 0.0 < losses["lc_winrate"] < 0.01


def test_lc_stationarity():
    """At the optimum the penalised gradient vanishes: mean((σ(z) − y) · x) + l2 · θ = 0."""
    rng = np.random.default_rng(3)
    diff = rng.normal(size=300)
    wins = (rng.random(300) < 1.0 / (1.0 + np.exp(-diff))).astype(float)
    l2 = 1e-2
    out = length_controlled_winrate(wins, diff, l2=l2)
    x = np.stack([np.ones(300), np.tanh(diff / diff.std(ddof=1))], axis=1)
    theta = np.array([out["intercept"], out["length_coef"]])
    grad = x.T @ (1.0 / (1.0 + np.exp(-x @ theta)) - wins) / 300 + l2 * theta
    assert np.abs(grad).max() < 1e-8


def test_lc_invariances():
    rng = np.random.default_rng(4)
    diff = rng.normal(size=500)
    wins = (rng.random(500) < 0.4 + 0.3 * (diff > 0)).astype(float)
    base = length_controlled_winrate(wins, diff)
    # Units of length do not matter: only tanh(diff / std(diff)) enters.
    assert length_controlled_winrate(wins, 37.0 * diff) == pytest.approx(base)
    # Swapping model and baseline mirrors the result.
    mirrored = length_controlled_winrate(1.0 - wins, -diff)
    assert mirrored["lc_winrate"] == pytest.approx(1.0 - base["lc_winrate"], abs=1e-9)
    assert mirrored["length_coef"] == pytest.approx(base["length_coef"], abs=1e-9)


def test_lc_with_no_length_variation_is_raw_rate():
    """All diffs equal: the length feature is 0, θ1 = 0, and σ(θ0) is the raw rate up to ridge."""
    out = length_controlled_winrate([1.0, 0.0, 1.0, 0.5], [3.0, 3.0, 3.0, 3.0])
    assert out["length_coef"] == 0.0
    assert out["lc_winrate"] == pytest.approx(0.625, abs=1e-3)
    assert length_controlled_winrate([0.5] * 6, np.arange(6.0))["lc_winrate"] == pytest.approx(0.5)


def test_lc_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        length_controlled_winrate([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        length_controlled_winrate([2.0], [1.0])
    with pytest.raises(ValueError, match="l2"):
        length_controlled_winrate([1.0], [1.0], l2=0.0)
