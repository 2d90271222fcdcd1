"""Preference-model losses: hand-computed values and invariants."""

from __future__ import annotations

import math

import torch

from genpref.losses.preference import (
    PreferenceLossType,
    hard_label_loss,
    preference_loss,
    regression_loss,
    regression_target,
    soft_label_loss,
)


def test_hard_label_hand_values():
    # −log σ(0) = log 2; −log σ(2 − 1) = log(1 + e^{−1})
    z = torch.tensor([0.0, 2.0])
    out = hard_label_loss(z, torch.tensor([0.0, 1.0]))
    assert torch.allclose(out, torch.tensor([math.log(2), math.log(1 + math.exp(-1))]))
    assert out.shape == (2,)  # per example, no reduction


def test_hard_label_monotone_in_margin_and_logit():
    z = torch.linspace(-5, 5, 21)
    loss = hard_label_loss(z)
    assert torch.all(loss[1:] < loss[:-1])  # larger logit, smaller loss
    assert torch.all(hard_label_loss(z, torch.full_like(z, 1.0)) > loss)  # a margin makes it harder


def test_soft_label_hand_values_and_hard_limit():
    z = torch.tensor([1.0])
    p = torch.tensor([0.7])
    expected = -(0.7 * math.log(1 / (1 + math.exp(-1))) + 0.3 * math.log(1 - 1 / (1 + math.exp(-1))))
    assert math.isclose(soft_label_loss(z, p).item(), expected, rel_tol=1e-6)
    zs = torch.randn(10)
    assert torch.allclose(soft_label_loss(zs, torch.ones(10)), hard_label_loss(zs), atol=1e-6)
    # minimised where σ(z) = p
    grid = torch.linspace(-3, 3, 601)
    best = grid[soft_label_loss(grid, torch.full_like(grid, 0.7)).argmin()]
    assert math.isclose(best.item(), math.log(0.7 / 0.3), abs_tol=0.01)


def test_regression_hand_values_and_target():
    assert regression_loss(torch.tensor([3.0]), torch.tensor([1.0])).item() == 2.0
    t = regression_target(torch.tensor([1.0, 0.5, 0.0]), None, clip=5.0)
    assert torch.allclose(t, torch.tensor([5.0, 0.0, -5.0]))
    t = regression_target(torch.tensor([1.0, 1.0]), torch.tensor([2.0, float("nan")]), clip=5.0)
    assert torch.allclose(t, torch.tensor([2.0, 5.0]))


def test_dispatcher_flips_hard_labels_and_ignores_nan_margins():
    z = torch.tensor([1.5, 1.5])
    label = torch.tensor([1.0, 0.0])
    out = preference_loss(PreferenceLossType.HARD, z, label, torch.tensor([float("nan"), float("nan")]))
    assert torch.allclose(out, torch.stack([hard_label_loss(z[:1])[0], hard_label_loss(-z[1:])[0]]))
    for kind in PreferenceLossType:
        assert preference_loss(kind, z, label).shape == (2,)
