"""Preference-score math: hand-computed values and the invariants of arXiv 2410.02197 §4."""

from __future__ import annotations

import itertools
import math

import torch

from genpref.models import scores as S


def test_gpm_score_hand_computed_one_block():
    # s(a ≻ b) = a0·b1 − a1·b0 = 1·4 − 2·3 = −2
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    assert S.gpm_score(a, b).item() == -2.0
    # equals ⟨R a, b⟩ with the explicit matrix R = [[0, −1], [1, 0]]
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    assert S.gpm_score(a, b).item() == torch.dot(R @ a, b).item()


def test_gpm_score_matches_explicit_block_operator_with_eigenvalues():
    torch.manual_seed(0)
    k = 3
    a, b, lam = torch.randn(5, 2 * k), torch.randn(5, 2 * k), torch.rand(5, k)
    for row in range(5):
        R = torch.zeros(2 * k, 2 * k)
        for block in range(k):
            R[2 * block, 2 * block + 1] = -lam[row, block]
            R[2 * block + 1, 2 * block] = lam[row, block]
        expected = torch.dot(R @ a[row], b[row])
        assert torch.allclose(S.gpm_score(a[row], b[row], lam[row]), expected, atol=1e-6)
        assert torch.allclose(S.gpm_rotate(a[row], lam[row]), R @ a[row], atol=1e-6)


def test_antisymmetry_and_self_preference():
    torch.manual_seed(1)
    a, b, lam = torch.randn(16, 8), torch.randn(16, 8), torch.rand(16, 4)
    assert torch.equal(S.gpm_score(a, b, lam), -S.gpm_score(b, a, lam))
    assert torch.equal(S.gpm_score(a, a, lam), torch.zeros(16))
    p_ab = S.preference_prob(S.gpm_score(a, b, lam), 0.1)
    p_ba = S.preference_prob(S.gpm_score(b, a, lam), 0.1)
    assert torch.allclose(p_ab + p_ba, torch.ones(16), atol=1e-6)
    assert torch.all(S.preference_prob(S.gpm_score(a, a), 0.1) == 0.5)


def test_bt_is_the_one_block_special_case():
    r = torch.tensor([0.3, -1.2, 2.0])
    v = S.bt_embedding(r)
    for i, j in itertools.product(range(3), repeat=2):
        assert math.isclose(S.gpm_score(v[i], v[j]).item(), S.bt_score(r[i], r[j]).item(), abs_tol=1e-6)


def test_score_matrix_and_mixture():
    torch.manual_seed(2)
    v, lam = torch.randn(5, 4), torch.rand(2)
    m = S.gpm_score_matrix(v, lam)
    assert torch.allclose(m, -m.T, atol=1e-6)
    for i, j in itertools.product(range(5), repeat=2):
        assert math.isclose(m[i, j].item(), S.gpm_score(v[i], v[j], lam).item(), abs_tol=1e-5)
    # s(y_i ≻ mixture) = mean_j s(y_i ≻ y_j) by bilinearity
    assert torch.allclose(S.gpm_score_vs_mixture(v, lam), m.mean(1), atol=1e-6)
    batched = S.gpm_score_matrix(v[None].repeat(2, 1, 1), lam[None].repeat(2, 1))
    assert torch.allclose(batched[1], m, atol=1e-6)


def test_prompt_gate_is_a_distribution():
    lam = S.prompt_gate(torch.tensor([[0.0, 0.0], [2.0, -1.0]]))
    assert torch.allclose(lam.sum(-1), torch.ones(2))
    assert torch.allclose(lam[0], torch.tensor([0.5, 0.5]))


def _rock_paper_scissors() -> torch.Tensor:
    """Three unit vectors 120° apart: each beats the next one counter-clockwise."""
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    return torch.stack([angles.cos(), angles.sin()], dim=-1)


def test_gpm_represents_rock_paper_scissors_exactly():
    v = _rock_paper_scissors()
    # s(i ≻ i+1) = sin(120°)·(−1)? compute: a0 b1 − a1 b0 = sin(θ_b − θ_a) = sin(120°) > 0
    cycle = [(0, 1), (1, 2), (2, 0)]
    for i, j in cycle:
        assert math.isclose(S.gpm_score(v[i], v[j]).item(), math.sin(2 * math.pi / 3), rel_tol=1e-6)
    p = S.preference_prob(S.gpm_score_matrix(v), tau=0.1)
    assert all(p[i, j] > 0.99 for i, j in cycle)  # every edge of the cycle with P > 0.99


def test_bt_cannot_fit_a_three_cycle():
    """Any scalar scores order the three items, so at most 2 of the 3 cycle edges are right."""
    cycle = [(0, 1), (1, 2), (2, 0)]
    torch.manual_seed(3)
    best = 0
    for _ in range(2000):
        r = torch.randn(3)
        best = max(best, sum(int(S.bt_score(r[i], r[j]) > 0) for i, j in cycle))
    assert best == 2
    for perm in itertools.permutations(range(3)):  # exhaustive over strict orders
        r = torch.tensor(perm, dtype=torch.float)
        assert sum(int(S.bt_score(r[i], r[j]) > 0) for i, j in cycle) <= 2
