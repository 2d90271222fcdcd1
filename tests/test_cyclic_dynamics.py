"""Multiplicative-weights dynamics on category games (genpref.cyclic.dynamics), checked by hand."""

import math

import numpy as np
import pytest

from genpref.cyclic.dynamics import (
    mwu_step,
    payoff,
    reference,
    sampled_targets,
    simulate,
    simulate_per_prompt,
)
from genpref.cyclic.games import GAMES

RPS = np.array([[0.5, 0.1, 0.9], [0.9, 0.5, 0.1], [0.1, 0.9, 0.5]])  # 1 ≻ 0, 2 ≻ 1, 0 ≻ 2, all at 0.9


def test_payoff_is_p_minus_half_for_sppo_and_the_logit_for_gpo():
    assert payoff(RPS, "sppo")[1, 0] == pytest.approx(0.4)
    assert payoff(RPS, "gpo")[1, 0] == pytest.approx(math.log(9))
    assert payoff(RPS, "gpo")[0, 0] == 0.0
    with pytest.raises(ValueError, match="sppo' or 'gpo"):
        payoff(RPS, "dpo")


def test_mwu_step_by_hand():
    # π ∝ (0.5 · 3, 0.5 · 1) = (0.75, 0.25)
    assert mwu_step(np.array([0.5, 0.5]), np.array([1.0, 0.0]), math.log(3)) == pytest.approx([0.75, 0.25])


def test_exact_mwu_one_step_by_hand_and_uniform_is_a_fixed_point():
    pi0 = np.array([0.5, 0.25, 0.25])
    out = simulate(RPS, pi0, "sppo", eta=1.0, iterations=1)
    g = (RPS - 0.5) @ pi0  # (0 - 0.1 + 0.1, 0.2 + 0 - 0.1, -0.2 + 0.1 + 0) = (0, 0.1, -0.1)
    assert g == pytest.approx([0.0, 0.1, -0.1])
    w = pi0 * np.exp(g)
    assert out["distributions"][1] == pytest.approx((w / w.sum()).round(4).tolist())
    assert out["exploitability"][0] == pytest.approx((RPS @ pi0).max() - 0.5)
    uniform = simulate(RPS, np.full(3, 1 / 3), "gpo", eta=2.0, iterations=3)
    assert uniform["average_exploitability"] == pytest.approx(0.0, abs=1e-12)


def test_optimistic_second_step_uses_two_g_t_minus_g_previous():
    pi0 = np.array([0.6, 0.3, 0.1])
    m = payoff(RPS, "gpo")
    pi1 = mwu_step(pi0, m @ pi0, 0.5)
    pi2 = mwu_step(pi1, 2 * (m @ pi1) - m @ pi0, 0.5)
    out = simulate(RPS, pi0, "gpo", eta=0.5, iterations=2, update_rule="optimistic")
    assert out["distributions"][2] == pytest.approx(pi2.round(4).tolist())
    assert out["average_exploitability"] == pytest.approx((RPS @ ((pi1 + pi2) / 2)).max() - 0.5)


def test_sampled_targets_mean_against_own_prompt_and_unsampled_categories():
    rng = np.random.default_rng(0)
    m = payoff(RPS, "sppo")
    g, seen = sampled_targets(m, np.array([1.0, 0.0, 0.0]), prompts=3, k=4, rng=rng)
    assert seen.tolist() == [True, False, False]
    assert g.tolist() == [0.0, 0.0, 0.0]  # only category 0: every sample ties itself
    g, seen = sampled_targets(m, np.array([0.5, 0.5, 0.0]), prompts=200, k=8, rng=rng)
    # E[g(1)] = P(1 ≻ own prompt's samples) − ½: the sample itself (0) and 7 others, half of them 0
    assert g[1] == pytest.approx(0.4 * 3.5 / 8, abs=0.02)
    assert g[0] == pytest.approx(-0.4 * 3.5 / 8, abs=0.02)


def test_sampled_dynamics_approach_the_exact_ones_with_many_samples():
    game = GAMES["pets_weighted"]
    pi0 = np.array([0.47, 0.25, 0.19, 0.09])
    exact = simulate(game.matrix, pi0, "gpo", 0.7, 3, "optimistic")
    big = simulate(game.matrix, pi0, "gpo", 0.7, 3, "optimistic", prompts=400, k=64, seed=1)
    assert np.abs(np.array(big["distributions"]) - np.array(exact["distributions"])).max() < 0.03
    for d in big["distributions"]:
        assert sum(d) == pytest.approx(1.0, abs=1e-3)


def test_reference_reports_exact_and_sampled_figures():
    game = GAMES["pets"]
    r = reference(
        game.matrix, np.array([0.47, 0.25, 0.19, 0.09]), "sppo", 3.0, 4, "optimistic", 8, 8, repeats=20
    )
    low, high = r["sampled_average_exploitability_p10_p90"]
    assert 0 <= low <= r["sampled_average_exploitability"] <= high
    assert 0 <= r["sampled_fraction_at_most_0.05"] <= 1
    assert r["exact_average_exploitability"] >= 0


def test_effective_eta_recovers_the_step_of_an_exact_update():
    from genpref.cyclic.dynamics import effective_eta

    pi0 = np.array([0.5, 0.3, 0.2])
    u = payoff(RPS, "gpo") @ pi0
    assert effective_eta(pi0, mwu_step(pi0, u, 1.25), u) == pytest.approx(1.25, abs=0.03)
    assert effective_eta(pi0, pi0, u) == 0.0


def test_per_prompt_dynamics_by_hand_and_equal_to_shared_when_prompts_start_alike():
    a, b = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.2, 0.6])
    out = simulate_per_prompt(RPS, np.stack([a, b]), "sppo", eta=1.0, iterations=1)
    m = payoff(RPS, "sppo")
    pooled = (mwu_step(a, m @ a, 1.0) + mwu_step(b, m @ b, 1.0)) / 2  # each prompt against itself
    assert out["distributions"][0] == pytest.approx(((a + b) / 2).round(4).tolist())
    assert out["distributions"][1] == pytest.approx(pooled.round(4).tolist())
    alike = simulate_per_prompt(RPS, np.stack([a, a, a]), "gpo", 0.5, 3, "optimistic")
    shared = simulate(RPS, a, "gpo", 0.5, 3, "optimistic")
    assert np.array(alike["distributions"]) == pytest.approx(np.array(shared["distributions"]))


def test_a_prompt_whose_samples_are_all_one_category_is_frozen():
    # category 1 beats category 0 (P = 0.9) but has 0.1 % of the prompt's mass: exact multiplicative
    # weights grow it (×e² per step at η = 5), while 8 samples a step almost never draw it, so the
    # sampled prompt sees only category 0, every sample ties itself, and nothing moves
    pi0s = np.array([[0.999, 0.001, 0.0]])
    exact = simulate_per_prompt(RPS, pi0s, "sppo", 5.0, 6)
    sampled = simulate_per_prompt(RPS, pi0s, "sppo", 5.0, 6, k=8, seed=0)
    assert exact["distributions"][-1][1] > 0.5
    # measured on 8 fresh draws a step, so a 0.1 % category shows up now and then: 1/8 at most once here
    assert np.mean([d[1] for d in sampled["distributions"][1:]]) < 0.05


def test_reference_adds_the_per_prompt_floor_when_given_each_prompts_start():
    game = GAMES["pets_weighted"]
    pi0s = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]])
    r = reference(game.matrix, pi0s.mean(0), "sppo", 3.0, 4, "optimistic", 2, 8, repeats=10, pi0s=pi0s)
    low, high = r["per_prompt_sampled_average_exploitability_p10_p90"]
    assert 0 <= low <= r["per_prompt_sampled_average_exploitability"] <= high
    assert 0 <= r["per_prompt_sampled_fraction_at_most_0.05"] <= 1
    assert "per_prompt_exact_average_exploitability" in r
    assert "per_prompt_exact_average_exploitability" not in reference(
        game.matrix, pi0s.mean(0), "sppo", 3.0, 4, "optimistic", 2, 8, repeats=2
    )
