"""genpref.cyclic.builder on a hand-made fixture in UltraFeedback's real schema.

Fixture rows (ratings: instruction_following, honesty, truthfulness, helpfulness; responses A, B, C, D):

1. A (5,3,1,3), B (1,5,3,3), C (3,1,5,3): a rotation over the first three criteria, helpfulness tied.
2. three responses rated (4,4,4,4): ties everywhere.
3. as row 1 but B's honesty is "N/A".
4. as row 1 plus D rated exactly like C (different text).
5. two responses only.
6. three completions, two with the same text.
7. A (1,1,5,5), B (5,5,1,3), C (3,4,2,1): the types of genpref's synthetic data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from genpref.cyclic.builder import (
    CRITERIA,
    build_cyclic,
    build_cyclic_datasets,
    comparisons_from_rated,
    write_datasets,
)
from genpref.cyclic.graph import analyze_comparisons, comparisons_from_examples
from genpref.data.load import load_preferences
from genpref.errors import DataError

FIXTURE = Path(__file__).parent / "data" / "ultrafeedback_aspects_fixture.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
IF, HON, TRU, HELP = CRITERIA


def texts(line: int) -> list[str]:
    return [c["response"] for c in ROWS[line - 1]["completions"]]


def edges(examples, line: int) -> list[tuple[str, str, str]]:
    """(chosen, rejected, subset) of the examples built from fixture ``line``."""
    prefix = f"{FIXTURE.name}:{line}#"
    return [(e.chosen, e.rejected, e.subset) for e in examples if e.origin.startswith(prefix)]


@pytest.fixture(scope="module")
def report():
    return build_cyclic(FIXTURE)


def test_counts(report):
    assert report.prompts_read == 7
    assert report.skipped_few_responses == 2  # row 5 (2 responses), row 6 (a duplicate dropped)
    assert report.responses_dropped == 1
    assert report.missing_ratings == {IF: 0, HON: 1, TRU: 0, HELP: 0}
    assert report.prompts_with_cycle == {f"no_{c}": 1 for c in (IF, HON, TRU)} | {"no_helpfulness": 4}
    assert report.no_cycle == {f"no_{c}": 4 for c in (IF, HON, TRU)} | {"no_helpfulness": 1}
    assert report.cycles == report.prompts_with_cycle  # max_cycles_per_prompt=1
    assert {name: len(v) for name, v in report.datasets.items()} == {
        name: 3 * n for name, n in report.cycles.items()
    }
    assert "read 7 prompts" in report.summary()


def test_rotation_row(report):
    """Row 1 without helpfulness. Orientation A≻B≻C≻A: A≻B only by instruction following (5>1),
    B≻C only by honesty (5>1), C≻A only by truthfulness (5>1): gaps (4, 4, 4). The other orientation
    A≻C≻B≻A has gaps of 2 only, so it loses (rule 3). With helpfulness tied (3, 3, 3), the datasets
    that keep helpfulness have just two usable criteria and no cycle."""
    a, b, c = texts(1)
    assert edges(report.datasets["no_helpfulness"], 1) == [(a, b, IF), (b, c, HON), (c, a, TRU)]
    origins = [e.origin for e in report.datasets["no_helpfulness"][:3]]
    assert origins == [f"{FIXTURE.name}:1#cycle0:edge{k}" for k in range(3)]
    for name in ("no_instruction_following", "no_honesty", "no_truthfulness"):
        assert edges(report.datasets[name], 1) == []


def test_na_rating_is_unusable(report):
    """Row 3: B's honesty is N/A, so B≻C by honesty is gone and A≻B≻C≻A has no assignment. The other
    orientation survives: A≻C by honesty (3>1), C≻B by instruction following (3>1), B≻A by
    truthfulness (3>1); written from A, the first response of the row."""
    a, b, c = texts(3)
    assert edges(report.datasets["no_helpfulness"], 3) == [(a, c, HON), (c, b, IF), (b, a, TRU)]


def test_every_edge_is_strict_under_its_criterion():
    for max_cycles in (1, None):
        for examples in build_cyclic_datasets(FIXTURE, max_cycles_per_prompt=max_cycles).values():
            for e in examples:
                line = int(e.origin.split("#")[0].rsplit(":", 1)[1])
                ratings = {
                    c["response"]: c["annotations"][e.subset]["Rating"] for c in ROWS[line - 1]["completions"]
                }
                assert ratings[e.chosen] != "N/A" and ratings[e.rejected] != "N/A"
                assert int(ratings[e.chosen]) > int(ratings[e.rejected])


def test_ties_give_no_cycle(report):
    for examples in report.datasets.values():
        assert edges(examples, 2) == []


def test_equal_cycles_counted_and_tie_broken_by_seed():
    """Row 4: {A, B, C} and {A, B, D} are equally strong cycles ({A, C, D} and {B, C, D} are not:
    C and D tie on every criterion). All cycles: both. One cycle: the seed picks C or D,
    deterministically."""
    a, b, c, d = texts(4)
    both = edges(build_cyclic_datasets(FIXTURE, max_cycles_per_prompt=None)["no_helpfulness"], 4)
    assert sorted(both) == sorted(
        [(a, b, IF), (b, c, HON), (c, a, TRU), (a, b, IF), (b, d, HON), (d, a, TRU)]
    )
    picked = {}
    for seed in range(12):
        one = edges(build_cyclic_datasets(FIXTURE, seed=seed)["no_helpfulness"], 4)
        assert one == edges(build_cyclic_datasets(FIXTURE, seed=seed)["no_helpfulness"], 4)
        assert len(one) == 3
        picked[seed] = one[1][1]  # B's loser: C or D
    assert set(picked.values()) == {c, d}


def test_synthetic_types_cycle_in_every_dataset(report):
    """Row 7, A (1,1,5,5), B (5,5,1,3), C (3,4,2,1), always A≻B≻C≻A; the strongest assignment:

    * no instruction following: A≻B truthfulness (4), B≻C helpfulness (2), C≻A honesty (3);
    * no honesty: A≻B truthfulness (4), B≻C helpfulness (2), C≻A instruction following (2);
    * no truthfulness: A≻B helpfulness (2), B≻C instruction following (2), C≻A honesty (3)
      (B≻C by honesty has gap 1 only);
    * no helpfulness: A≻B truthfulness (4), B≻C instruction following (2), C≻A honesty (3).
    The reverse orientation needs C≻B, which only truthfulness (2>1) gives: gap 1, weaker.
    """
    a, b, c = texts(7)
    expected = {
        "no_instruction_following": (TRU, HELP, HON),
        "no_honesty": (TRU, HELP, IF),
        "no_truthfulness": (HELP, IF, HON),
        "no_helpfulness": (TRU, IF, HON),
    }
    for name, (s0, s1, s2) in expected.items():
        assert edges(report.datasets[name], 7) == [(a, b, s0), (b, c, s1), (c, a, s2)]


def test_datasets_are_cyclic(report):
    for examples in report.datasets.values():
        diagnostics = analyze_comparisons(comparisons_from_examples(examples))
        assert diagnostics.bt_ceiling == 2 / 3 and diagnostics.bt_ceiling_exact
        assert diagnostics.three_cycles == len(examples) // 3


def test_flat_form_gives_the_same_datasets(report):
    flat = []
    for row in ROWS:
        responses = []
        for c in row["completions"]:
            ratings = {
                k: (None if v["Rating"] == "N/A" else int(v["Rating"])) for k, v in c["annotations"].items()
            }
            responses.append({"text": c["response"], "ratings": ratings})
        flat.append({"prompt": row["instruction"], "responses": responses})
    for name, examples in build_cyclic_datasets(flat).items():
        strip = [(e.prompt, e.chosen, e.rejected, e.subset) for e in examples]
        assert strip == [(e.prompt, e.chosen, e.rejected, e.subset) for e in report.datasets[name]]
        assert all(e.origin.startswith("<list>:") for e in examples)


def test_independent_of_row_order(report):
    shuffled = ROWS[:]
    random.Random(3).shuffle(shuffled)
    for name, examples in build_cyclic_datasets(shuffled).items():
        key = sorted((e.chosen, e.rejected, e.subset) for e in examples)
        assert key == sorted((e.chosen, e.rejected, e.subset) for e in report.datasets[name])


def test_transitive_triples():
    """A (5,5,5,5) ≻ B (3,3,3,3) ≻ C (1,1,1,1) on every criterion: no cycle; with transitive_triples
    the chain A≻B, B≻C, A≻C, one criterion per edge."""
    ratings = [dict.fromkeys(CRITERIA, v) for v in (5, 3, 1)]
    row = {"prompt": "p", "responses": [{"text": t, "ratings": r} for t, r in zip("ABC", ratings)]}
    assert build_cyclic([row]).no_cycle == {f"no_{c}": 1 for c in CRITERIA}
    result = build_cyclic([row], transitive_triples=True)
    for name, examples in result.datasets.items():
        assert [(e.chosen, e.rejected) for e in examples] == [("A", "B"), ("B", "C"), ("A", "C")]
        assert sorted(e.subset for e in examples) == sorted(c for c in CRITERIA if name != f"no_{c}")
        assert examples[0].origin == "<list>:1#chain0:edge0"
        assert analyze_comparisons(comparisons_from_examples(examples)).bt_ceiling == 1.0
    assert result.transitive == {f"no_{c}": 1 for c in CRITERIA}


def test_written_files_load_back(report, tmp_path):
    paths = write_datasets(report.datasets, tmp_path)
    assert sorted(p.name for p in paths.values()) == sorted(f"no_{c}.jsonl" for c in CRITERIA)
    for name, path in paths.items():
        loaded = load_preferences(path).examples
        original = report.datasets[name]
        assert [(e.prompt, e.chosen, e.rejected, e.subset, e.label) for e in loaded] == [
            (e.prompt, e.chosen, e.rejected, e.subset, 1.0) for e in original
        ]
        first = json.loads(path.read_text().splitlines()[0])
        assert first["origin"] == original[0].origin


def test_all_criteria_view_of_rated_rows():
    """Every strict comparison of every criterion. Row 1 alone: 3 criteria × 3 pairs (helpfulness is
    tied) = 9 comparisons. Each pair is won 2:1: B beats A (honesty, truthfulness), C beats B
    (instruction following, truthfulness), A beats C (instruction following, honesty), a cyclic
    majority; the best order takes the majority of two pairs and the minority of one → (2+2+1)/9."""
    comparisons = comparisons_from_rated([ROWS[0]])
    assert len(comparisons) == 9
    report = analyze_comparisons(comparisons)
    assert report.three_cycles == 1 and report.bt_ceiling == pytest.approx(5 / 9)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"prompt": "p", "responses": [{"text": "a", "ratings": {"honesty": "high"}}]}, "not a number"),
        ({"prompt": "p", "responses": [{"text": "a", "ratings": {"honesty": True}}]}, "finite number"),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "no 'completions' or 'responses'"),
        ({"instruction": " ", "completions": []}, "missing or empty prompt"),
        ({"prompt": "p", "responses": "abc"}, "expected a list"),
    ],
)
def test_bad_rows_raise(row, match):
    with pytest.raises(DataError, match=match) as info:
        build_cyclic([{"prompt": "ok", "responses": []}, row])
    assert info.value.line == 2 and info.value.source == "<list>"


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_cycles_per_prompt"):
        build_cyclic(FIXTURE, max_cycles_per_prompt=0)
    with pytest.raises(ValueError, match="at least 4 criteria"):
        build_cyclic(FIXTURE, criteria=(IF, HON, TRU))
    with pytest.raises(ValueError, match="cycle_length"):
        build_cyclic(FIXTURE, cycle_length=2)
