"""Preference games: category rule, oracle matrix, exact Nash and exploitability (hand-computed)."""

from dataclasses import replace

import numpy as np
import pytest

from genpref.cyclic.games import (
    GAMES,
    OTHER,
    PreferenceGame,
    exploitability,
    fictitious_play,
    game_comparisons,
    response_pool,
    symmetric_nash,
)
from genpref.cyclic.graph import analyze_comparisons, comparisons_from_examples


def test_category_is_the_first_option_named_as_a_whole_word():
    g = GAMES["pets"]
    assert g.category("Cat.") == "cat"
    assert g.category("I pick a FISH, not a dog") == "fish"
    assert g.category("dogs chase cats") == "dog"
    assert g.category("Goldfish and catfish") == OTHER  # not whole words
    assert g.category("I'm not sure") == OTHER
    assert np.allclose(g.distribution(["cat", "Cat!", "dog", "hello"]), [0.5, 0.25, 0, 0.25])


def test_matrix_is_a_preference_matrix():
    for g in GAMES.values():
        p = g.matrix
        assert np.allclose(p + p.T, 1.0)
        assert np.allclose(np.diag(p), 0.5)
        assert np.allclose(p[:3, 3], 0.9)  # every option beats `other`


def test_nash_of_the_builtin_games_by_hand():
    # pets: symmetric cycle -> uniform over the options, nothing on `other`
    assert np.allclose(GAMES["pets"].nash, [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-9)
    # weighted, (cat, dog, fish): A[d,c]=.4, A[f,d]=.3, A[c,f]=.2 -> cat: -.4d+.2f=0, dog: .4c-.3f=0
    # -> f = 2d, c = .75f = 1.5d -> (1.5, 1, 2)/4.5 = (1/3, 2/9, 4/9)
    assert np.allclose(GAMES["pets_weighted"].nash, [1 / 3, 2 / 9, 4 / 9, 0], atol=1e-9)
    # skewed: A[d,c]=.2, A[f,d]=.3, A[c,f]=.4 -> cat: -.2d+.4f=0, dog: .2c-.3f=0 -> d = 2f, c = 1.5f
    # -> (1.5, 2, 1)/4.5 = (1/3, 4/9, 2/9)
    assert np.allclose(GAMES["pets_skewed"].nash, [1 / 3, 4 / 9, 2 / 9, 0], atol=1e-9)
    for g in GAMES.values():
        assert g.exploitability(g.nash) == pytest.approx(0.0, abs=1e-9)


def test_exploitability_by_hand():
    g = GAMES["pets_weighted"]
    # pure cat: dog beats it with 0.9 -> 0.4
    assert g.exploitability(np.array([1.0, 0, 0, 0])) == pytest.approx(0.4)
    # uniform over options: dog's value = (.9 + .5 + .2)/3 = .5333; cat (.5+.1+.7)/3; fish (.3+.8+.5)/3
    assert g.exploitability(np.array([1 / 3, 1 / 3, 1 / 3, 0])) == pytest.approx(1.6 / 3 - 0.5)
    # all `other`: any option wins 0.9
    assert g.exploitability(np.array([0, 0, 0, 1.0])) == pytest.approx(0.4)
    assert exploitability(np.array([[0.5, 0.2], [0.8, 0.5]]), np.array([0.0, 1.0])) == pytest.approx(0.0)


def test_nash_agrees_with_fictitious_play_on_a_random_game():
    rng = np.random.default_rng(0)
    upper = rng.uniform(0.05, 0.95, size=(5, 5))
    p = np.triu(upper, 1) + np.tril(1 - upper.T, -1) + 0.5 * np.eye(5)
    pi = symmetric_nash(p)
    assert exploitability(p, pi) <= 1e-7 and pi.min() >= 0 and pi.sum() == pytest.approx(1)
    assert exploitability(p, fictitious_play(p, 20000)) < 0.02


def test_a_dominated_strategy_gets_no_mass():
    p = np.array([[0.5, 0.7], [0.3, 0.5]])
    assert np.allclose(symmetric_nash(p), [1, 0])


def test_missing_pair_is_refused():
    with pytest.raises(ValueError, match="no P"):
        _ = PreferenceGame("bad", ("a", "b", "c"), (("a", "b", 0.6),)).matrix


def test_game_comparisons_carry_the_oracle_and_are_cyclic():
    g = GAMES["pets"]
    pool = response_pool(g, extra=["A cat it is", "blah", "dog or fish."])
    assert "blah" in pool[OTHER]  # the policy's off-topic answers teach the judge `other`
    assert all(t not in texts for texts in pool.values() for t in ("A cat it is", "dog or fish."))
    rows = game_comparisons(g, pool, n_per_pair=4, seed=0)
    assert len(rows) == 6 * 4
    index = {c: i for i, c in enumerate(g.categories)}
    for r in rows:
        a, b = g.category(r.chosen), g.category(r.rejected)
        assert r.label == pytest.approx(g.matrix[index[a], index[b]])
        assert r.prompt in g.prompts
    # at the category level the hard majority graph is the rock-paper-scissors cycle
    by_category = [
        replace(r, prompt="x", chosen=g.category(r.chosen), rejected=g.category(r.rejected), label=1.0)
        if r.label > 0.5
        else replace(r, prompt="x", chosen=g.category(r.rejected), rejected=g.category(r.chosen), label=1.0)
        for r in rows
    ]
    report = analyze_comparisons(comparisons_from_examples(by_category))
    assert report.three_cycles == 1 and report.bt_ceiling < 1


def test_near_misses_are_other_and_the_held_out_ones_only_check():
    """Every near miss is ``other`` by the game's own rule (kitty is no cat, goldfish no fish); the
    training pool holds the trained ones, the held-out pool only the held-out ones."""
    g = GAMES["pets"]
    assert g.near_misses and g.held_out_near_misses
    assert not set(g.near_misses) & set(g.held_out_near_misses)
    pools = {False: response_pool(g), True: response_pool(g, held_out=True)}
    for held_out, pool in pools.items():
        assert all(g.category(t) == OTHER for t in pool[OTHER])
        assert ("Kitty" in pool[OTHER]) is not held_out and ("A ferret." in pool[OTHER]) is held_out
        assert pool["cat"] == pools[not held_out]["cat"]  # the options' answers are the same
