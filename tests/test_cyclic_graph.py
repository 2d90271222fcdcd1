"""genpref.cyclic.graph: 3-cycle counts and the scalar-model ceiling on hand-made graphs.

Every expected ceiling is derived by hand in the test's docstring: the best strict ranking's weight of
satisfied comparisons over the total weight.
"""

from __future__ import annotations

import itertools
import json
import random
import time

import pytest

from genpref.cyclic.graph import (
    analyze_comparisons,
    comparisons_from_examples,
    comparisons_from_rankings,
    max_acyclic_weight,
)
from genpref.data.types import PreferenceExample, RankingExample
from genpref.errors import DataError


def brute_force(n: int, weights: dict[tuple[int, int], float]) -> float:
    """Best forward weight over all n! orders (the definition of the ceiling's numerator)."""
    best = 0.0
    for order in itertools.permutations(range(n)):
        position = {item: p for p, item in enumerate(order)}
        best = max(best, sum(w for (i, j), w in weights.items() if position[i] < position[j]))
    return best


def random_graph(rng: random.Random, n: int, density: float) -> dict[tuple[int, int], float]:
    """Random weighted directed comparisons; opposite directions of a pair may both occur."""
    return {
        (i, j): float(rng.randint(1, 4))
        for i in range(n)
        for j in range(n)
        if i != j and rng.random() < density
    }


def test_three_cycle():
    """a≻b≻c≻a: any order breaks exactly one of the three edges → 2/3."""
    report = analyze_comparisons([("a", "b"), ("b", "c"), ("c", "a")])
    assert report.bt_ceiling == 2 / 3 and report.bt_ceiling_exact and report.bt_lower == 2 / 3
    assert (report.three_cycles, report.triples, report.intransitive_fraction) == (1, 1, 1.0)
    assert (report.n_items, report.n_comparisons, report.n_pairs) == (3, 3, 3)
    assert (report.n_components, report.largest_component, report.largest_cyclic_block) == (1, 3, 3)


def test_two_disjoint_three_cycles():
    """Two components, each loses one of three edges → 4/6 = 2/3."""
    cycles = [("a", "b"), ("b", "c"), ("c", "a"), ("x", "y"), ("y", "z"), ("z", "x")]
    report = analyze_comparisons(cycles)
    assert report.bt_ceiling == 2 / 3
    assert (report.n_components, report.largest_component, report.three_cycles) == (2, 3, 2)


def test_transitive_tournament():
    """i ≻ j for all i < j on 5 items: the order 0..4 satisfies all; C(5,3) = 10 triples, no cycle."""
    report = analyze_comparisons([(i, j) for i in range(5) for j in range(i + 1, 5)])
    assert report.bt_ceiling == 1.0 and report.bt_ceiling_exact
    assert (report.three_cycles, report.triples, report.intransitive_fraction) == (0, 10, 0.0)
    assert report.largest_cyclic_block == 1


def test_four_cycle():
    """a≻b≻c≻d≻a: one edge must break → 3/4; no pair of opposite items compared, so no triples."""
    report = analyze_comparisons([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")])
    assert report.bt_ceiling == 3 / 4
    assert (report.three_cycles, report.triples) == (0, 0)


def test_four_cycle_with_chord():
    """Add a≻c: cycles a→b→c→d→a and a→c→d→a share d→a; breaking it alone keeps 4 of 5 → 4/5.

    Triples: {a, b, c} is transitive (a≻b, b≻c, a≻c), {a, c, d} is the 3-cycle a≻c≻d≻a.
    """
    report = analyze_comparisons([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("a", "c")])
    assert report.bt_ceiling == 4 / 5
    assert (report.three_cycles, report.triples) == (1, 2)


def test_opposite_comparisons():
    """a≻b three times, b≻a once: ranking a first gets 3 of 4 → 3/4; one pair, no cycle in the majority."""
    report = analyze_comparisons([("a", "b")] * 3 + [("b", "a")])
    assert report.bt_ceiling == 3 / 4 and report.bt_ceiling_exact
    assert (report.n_comparisons, report.n_pairs, report.three_cycles) == (4, 1, 0)


def test_weighted_edges():
    """a≻b (2), b≻c (3), c≻a (1): break the lightest edge → (2 + 3) / 6 = 5/6."""
    report = analyze_comparisons([("a", "b", 2.0), ("b", "c", 3.0), ("c", "a", 1.0)])
    assert report.bt_ceiling == pytest.approx(5 / 6)
    # Opposite weighted: a≻b (1.5) and b≻a (0.5) plus b≻c (1): order a, b, c earns 1.5 + 1 of 3.
    report = analyze_comparisons([("a", "b", 1.5), ("b", "a", 0.5), ("b", "c", 1.0)])
    assert report.bt_ceiling == pytest.approx(2.5 / 3)


def test_tied_majority_is_no_edge():
    """a≻b and b≻a once each, b≻c, c≻a: the majority graph has no a-b edge, so no 3-cycle counted."""
    report = analyze_comparisons([("a", "b"), ("b", "a"), ("b", "c"), ("c", "a")])
    assert (report.triples, report.three_cycles) == (1, 0)
    assert report.bt_ceiling == 3 / 4  # order b, c, a: b≻c, c≻a and one of the a-b pair


def test_rock_paper_scissors_counts():
    """RPS: one 3-cycle. Rock-paper-scissors-lizard-Spock (each of 5 beats 2): in a tournament a
    transitive triple has exactly one item beating the other two, so there are
    Σ_v C(wins_v, 2) = 5 · C(2, 2) = 5 transitive triples and 10 - 5 = 5 cyclic ones; the best order
    0..4 breaks 3 of 10 edges (3≻0, 4≻0, 4≻1) → 7/10."""
    rps = analyze_comparisons([("rock", "scissors"), ("scissors", "paper"), ("paper", "rock")])
    assert (rps.three_cycles, rps.bt_ceiling) == (1, 2 / 3)
    rpsls = [(i, (i + 1) % 5) for i in range(5)] + [(i, (i + 2) % 5) for i in range(5)]
    report = analyze_comparisons(rpsls)
    assert (report.three_cycles, report.triples) == (5, 10)
    assert report.bt_ceiling == pytest.approx(7 / 10)


@pytest.mark.parametrize("seed", range(8))
def test_dp_equals_brute_force(seed):
    rng = random.Random(seed)
    for n in range(1, 8):
        weights = random_graph(rng, n, density=rng.uniform(0.2, 0.9))
        assert max_acyclic_weight(n, weights) == pytest.approx(brute_force(n, weights))
        comparisons = [(i, j, w) for (i, j), w in weights.items()]
        if comparisons:  # the full analysis (net edges, blocks, DP) agrees too
            total = sum(weights.values())
            report = analyze_comparisons(comparisons)
            assert report.bt_ceiling == pytest.approx(brute_force(n, weights) / total)


@pytest.mark.parametrize("seed", range(3))
def test_bounds_bracket_exact_value(seed):
    """On random 20-item graphs, with exact solving limited to 8 items, bt_lower ≤ exact ≤ bt_ceiling."""
    rng = random.Random(100 + seed)
    comparisons = [(i, j, w) for (i, j), w in random_graph(rng, 20, density=0.15).items()]
    exact = analyze_comparisons(comparisons, exact_max_items=20)
    assert exact.bt_ceiling_exact and exact.largest_cyclic_block > 8
    bounded = analyze_comparisons(comparisons, exact_max_items=8)
    assert not bounded.bt_ceiling_exact
    assert bounded.bt_lower <= exact.bt_ceiling + 1e-12
    assert exact.bt_ceiling <= bounded.bt_ceiling + 1e-12
    assert bounded.bt_lower > 0.5  # the heuristic order is a real ranking, far better than chance


def test_speed_100k_comparisons():
    """100k random comparisons over ~8k small components (3-12 items): finishes; time is printed."""
    rng = random.Random(0)
    comparisons, group = [], 0
    while len(comparisons) < 100_000:
        items = [(group, i) for i in range(rng.choice([3, 4, 5, 8, 12]))]
        group += 1
        for _ in range(2 * len(items)):
            winner, loser = rng.sample(items, 2)
            comparisons.append((winner, loser, 1.0))
    start = time.perf_counter()
    report = analyze_comparisons(comparisons[:100_000])
    print(f"\nanalyze_comparisons: 100k comparisons in {time.perf_counter() - start:.2f}s")
    assert report.n_comparisons == 100_000 and report.bt_ceiling_exact
    assert report.bt_lower == report.bt_ceiling < 1.0


def test_comparisons_from_examples_labels():
    """Label 1 → chosen ≻ rejected; label 0 flips; a soft label splits its weight both ways."""
    conversation = [{"role": "user", "content": "hi"}]
    examples = [
        PreferenceExample("p", "a", "b"),
        PreferenceExample("p", "b", "c", label=0.0),
        PreferenceExample(conversation, "x", "y", label=0.7),
        PreferenceExample("p", "same", "same"),
    ]
    comparisons = comparisons_from_examples(examples)
    conv_key = (("user", "hi"),)
    assert comparisons == [
        (("p", "a"), ("p", "b"), 1.0),
        (("p", "c"), ("p", "b"), 1.0),
        ((conv_key, "x"), (conv_key, "y"), 0.7),
        ((conv_key, "y"), (conv_key, "x"), pytest.approx(0.3)),
    ]
    assert analyze_comparisons(comparisons[2:]).bt_ceiling == pytest.approx(0.7)


def test_comparisons_from_rankings():
    """Scores (3, 1, 3): the tie between the first and third response gives no comparison."""
    ranking = RankingExample("pick", ("7", "3", "5"), (3.0, 1.0, 3.0))
    assert comparisons_from_rankings([ranking]) == [
        (("pick", "7"), ("pick", "3"), 1.0),
        (("pick", "5"), ("pick", "3"), 1.0),
    ]
    with pytest.raises(DataError, match="no scores"):
        comparisons_from_rankings([RankingExample("pick", ("a", "b"), None, origin="r.jsonl:3")])


def test_summary_json_and_edge_cases():
    report = analyze_comparisons([("a", "b"), ("b", "c"), ("c", "a")])
    assert "0.6667" in report.summary() and "3-cycles 1 of 1" in report.summary()
    assert json.loads(json.dumps(report.to_dict()))["bt_ceiling"] == pytest.approx(2 / 3)
    bounded = analyze_comparisons([(i, (i + 1) % 4) for i in range(4)], exact_max_items=2)
    assert "upper bound" in bounded.summary() and bounded.bt_ceiling == 3 / 4  # packing is tight here
    empty = analyze_comparisons([])
    assert (empty.n_items, empty.bt_ceiling, empty.three_cycles) == (0, 1.0, 0)
    with pytest.raises(ValueError, match="compared with itself"):
        analyze_comparisons([("a", "a")])
    with pytest.raises(ValueError, match=">= 0"):
        analyze_comparisons([("a", "b", -1.0)])
    with pytest.raises(ValueError, match="too large"):
        max_acyclic_weight(30, {})
