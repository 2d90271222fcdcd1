"""genpref.cyclic.synthetic: deterministic aspect-rated text whose response types form cycles."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from genpref.cyclic.builder import CRITERIA, build_cyclic
from genpref.cyclic.graph import analyze_comparisons, comparisons_from_examples
from genpref.cyclic.synthetic import (
    ABSURD,
    DISMISSIVE,
    EXAMPLE_LEADS,
    INVENTED,
    LEVELS,
    MARKERS,
    make_aspect_rated_rows,
    make_cyclic_datasets,
    split_by_cycle,
)

IF, HON, TRU, HELP = CRITERIA


def type_pairs(rows: list[dict], examples) -> Counter:
    """Counts of ``(type of chosen, type of rejected, subset)`` over ``examples``."""
    types = {(r["prompt"], x["text"]): x["type"] for r in rows for x in r["responses"]}
    return Counter((types[e.prompt, e.chosen], types[e.prompt, e.rejected], e.subset) for e in examples)


def test_deterministic_per_seed():
    assert make_aspect_rated_rows(30, seed=2) == make_aspect_rated_rows(30, seed=2)
    assert make_aspect_rated_rows(30, seed=2) != make_aspect_rated_rows(30, seed=3)
    assert make_cyclic_datasets(20, seed=5) == make_cyclic_datasets(20, seed=5)


def test_rows_follow_the_flat_schema():
    rows = make_aspect_rated_rows(40, responses_per_prompt=4, cyclic_fraction=0.5, seed=1)
    assert Counter(r["cyclic"] for r in rows) == {True: 20, False: 20}
    for row in rows:
        assert len(row["responses"]) == 4 and len({x["text"] for x in row["responses"]}) == 4
        for response in row["responses"]:
            assert set(response["ratings"]) == set(CRITERIA)
            assert all(response["ratings"][c] in LEVELS[c] for c in CRITERIA)


def test_ratings_are_realised_in_the_text():
    """Each level of each aspect shows up as its cue (see the module doc)."""
    for row in make_aspect_rated_rows(200, responses_per_prompt=4, cyclic_fraction=0.5, seed=4):
        requested = re.search(r"with '([^']+)'\.$", row["prompt"]).group(1)
        for response in row["responses"]:
            text, rating = response["text"], response["ratings"]
            starts_with = next((m for m in MARKERS if text.startswith(m)), None)
            assert {5: requested, 1: None}.get(rating[IF], starts_with) == starts_with
            assert (rating[IF] == 3) == (starts_with not in (None, requested))
            assert (rating[TRU] == 1) == any(a.format("").strip() in text for a in ABSURD)
            assert (rating[TRU] == 2) == any(invented in text for invented in INVENTED)
            assert (rating[HELP] == 5) == any(lead.split("{}")[0] in text for lead in EXAMPLE_LEADS)
            assert (rating[HELP] == 1) == any(text.endswith(d) for d in DISMISSIVE)


@pytest.mark.parametrize("responses_per_prompt", [3, 4, 6])
def test_every_dataset_is_a_pure_three_cycle_over_types(responses_per_prompt):
    """All cyclic: per prompt one cycle T0 ≻ T1 ≻ T2 ≻ T0 with one fixed criterion per type pair in
    each dataset (so the winner is a function of the two types), and the ceiling is exactly 2/3."""
    rows = make_aspect_rated_rows(40, responses_per_prompt=responses_per_prompt, seed=3)
    report = build_cyclic(rows, seed=3)
    for name, examples in report.datasets.items():
        assert report.prompts_with_cycle[name] == 40 and len(examples) == 120
        pairs = type_pairs(rows, examples)
        assert len(pairs) == 3 and set(pairs.values()) == {40}
        assert {(w, lo) for w, lo, _ in pairs} == {("T0", "T1"), ("T1", "T2"), ("T2", "T0")}
        diagnostics = analyze_comparisons(comparisons_from_examples(examples))
        assert diagnostics.bt_ceiling == 2 / 3 and diagnostics.bt_ceiling_exact
        assert diagnostics.three_cycles > 0 and diagnostics.intransitive_fraction == 1.0


def test_four_cycles():
    """cycle_length=4: one 4-cycle through T0..T3 per prompt, the same cycle for every prompt of a
    dataset; a scalar model can satisfy 3 of its 4 edges."""
    datasets = make_cyclic_datasets(30, seed=2, cycle_length=4)
    rows = make_aspect_rated_rows(30, seed=2, cycle_length=4)
    for examples in datasets.values():
        assert len(examples) == 4 * 30
        pairs = type_pairs(rows, examples)
        assert len(pairs) == 4 and set(pairs.values()) == {30}
        assert {w for w, _, _ in pairs} == {"T0", "T1", "T2", "T3"}
        assert analyze_comparisons(comparisons_from_examples(examples)).bt_ceiling == 3 / 4


def test_cyclic_fraction_sets_the_ceiling():
    """Transitive prompts give transitive triples (3 of 3 satisfiable), cyclic ones cycles (2 of 3):
    with c cyclic prompts out of n the ceiling is (2c + 3(n - c)) / 3n."""
    transitive = make_cyclic_datasets(30, seed=1, cyclic_fraction=0.0)
    for examples in transitive.values():
        report = analyze_comparisons(comparisons_from_examples(examples))
        assert report.bt_ceiling == 1.0 and report.three_cycles == 0 and len(examples) == 90
    rows = make_aspect_rated_rows(30, seed=1, cyclic_fraction=0.0)
    assert build_cyclic(rows).no_cycle == {f"no_{c}": 30 for c in CRITERIA}
    mixed = make_cyclic_datasets(30, seed=1, cyclic_fraction=0.4)
    for examples in mixed.values():
        ceiling = analyze_comparisons(comparisons_from_examples(examples)).bt_ceiling
        assert ceiling == pytest.approx((2 * 12 + 3 * 18) / 90)


def test_split_by_cycle_keeps_prompts_whole():
    examples = make_cyclic_datasets(40, seed=0)["no_honesty"]
    train, evals = split_by_cycle(examples, 0.25, seed=0)
    assert len(train) + len(evals) == len(examples)
    train_prompts, eval_prompts = {e.prompt for e in train}, {e.prompt for e in evals}
    assert not train_prompts & eval_prompts
    assert len(eval_prompts) == round(0.25 * len(train_prompts | eval_prompts))
    cycles = defaultdict(set)
    for split, part in (("train", train), ("eval", evals)):
        for e in part:
            cycles[e.origin.rsplit(":", 1)[0]].add(split)
    assert all(len(splits) == 1 for splits in cycles.values())  # no cycle cut in two
    assert split_by_cycle(examples, 0.25, seed=0) == (train, evals)
    assert split_by_cycle(examples, 0.25, seed=1) != (train, evals)
    with pytest.raises(ValueError, match="eval_fraction"):
        split_by_cycle(examples, 1.5)


def test_texts_are_short(minilm_tokenizer):
    """Every prompt + response pair fits in 64 MiniLM tokens (so max_length=64 cuts nothing)."""
    for cycle_length, n in ((3, 6), (4, 4)):
        rows = make_aspect_rated_rows(
            400, responses_per_prompt=n, cyclic_fraction=0.5, cycle_length=cycle_length
        )
        for row in rows:
            for response in row["responses"]:
                assert len(response["text"].split()) <= 40
                assert len(minilm_tokenizer(row["prompt"], response["text"])["input_ids"]) <= 64


def test_bad_arguments():
    with pytest.raises(ValueError, match="cycle_length"):
        make_aspect_rated_rows(3, cycle_length=5)
    with pytest.raises(ValueError, match="responses_per_prompt"):
        make_aspect_rated_rows(3, cycle_length=4, responses_per_prompt=3)
    with pytest.raises(ValueError, match="exactly 4"):
        make_aspect_rated_rows(3, cycle_length=4, responses_per_prompt=5)
    with pytest.raises(ValueError, match="cyclic_fraction"):
        make_aspect_rated_rows(3, cyclic_fraction=2.0)
