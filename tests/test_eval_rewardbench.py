"""Tests for genpref.eval.rewardbench: the section-score rule by hand, and the official tables."""

import pytest

from genpref.eval.rewardbench import (
    EXAMPLE_COUNTS,
    MATH_PRM_ROWS,
    SECTIONS,
    is_rewardbench_subset,
    section_scores,
)

CODE_SUBSETS = ("hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust")


def test_chat_section_is_count_weighted():
    """Counts 100 and 300, accuracies .5 and 1: (100 · .5 + 300 · 1) / 400 = 350 / 400 = 0.875."""
    out = section_scores(
        {"alpacaeval-easy": 0.5, "mt-bench-med": 1.0},
        subset_counts={"alpacaeval-easy": 100, "mt-bench-med": 300},
    )
    assert out == pytest.approx({"Chat": 0.875, "score": 0.875})


def test_official_counts_are_the_default():
    """alpacaeval-easy (100) at 1.0, mt-bench-easy (28) at .5: (100 + 14) / 128 = 0.890625."""
    out = section_scores({"alpacaeval-easy": 1.0, "mt-bench-easy": 0.5})
    assert out["Chat"] == pytest.approx(0.890625)


def test_reasoning_weights_math_as_much_as_all_code():
    """math-prm weight 984 = 6 · 164, so math at .9 and every code subset at .6 gives
    (.9 · 984 + .6 · 6 · 164) / (984 + 984) = (.9 + .6) / 2 = 0.75, the mean of math and code.

    Weighted by rows instead (math-prm 447): (.9 · 447 + .6 · 984) / 1431 = 992.7 / 1431 = 0.693711.
    """
    accuracy = {"math-prm": 0.9, **{name: 0.6 for name in CODE_SUBSETS}}
    assert section_scores(accuracy)["Reasoning"] == pytest.approx(0.75)
    rows = {**EXAMPLE_COUNTS, "math-prm": MATH_PRM_ROWS}
    assert section_scores(accuracy, rows)["Reasoning"] == pytest.approx(992.7 / 1431)


def test_unknown_subsets_are_ignored():
    base = {"alpacaeval-easy": 0.8, "donotanswer": 0.4}
    assert section_scores({**base, "shp": 0.0, "my-own-set": 1.0}) == section_scores(base)


def test_missing_sections_are_absent_and_score_averages_present_ones():
    """Chat = .8 and Safety = .6 (one subset each); score = (.8 + .6) / 2 = 0.7, sections unweighted."""
    out = section_scores({"alpacaeval-easy": 0.8, "donotanswer": 0.6})
    assert list(out) == ["Chat", "Safety", "score"]
    assert out["score"] == pytest.approx(0.7)


def test_no_rewardbench_subset_gives_empty_result():
    assert section_scores({"shp": 0.9}) == {}


def test_headline_score_is_mean_of_four_sections():
    accuracy = {name: 1.0 for name in EXAMPLE_COUNTS}
    for name in SECTIONS["Safety"]:
        accuracy[name] = 0.0
    out = section_scores(accuracy)
    assert out == pytest.approx(
        {"Chat": 1.0, "Chat Hard": 1.0, "Safety": 0.0, "Reasoning": 1.0, "score": 0.75}
    )


def test_custom_counts_must_cover_present_subsets():
    with pytest.raises(ValueError, match="no count"):
        section_scores({"alpacaeval-easy": 0.5, "mt-bench-med": 1.0}, {"alpacaeval-easy": 100})


def test_tables_are_consistent():
    """23 subsets, each in exactly one section; the filtered split holds 2985 rows (dataset card)
    once math-prm's up-weighted 984 is replaced by its 447 rows."""
    listed = [name for subsets in SECTIONS.values() for name in subsets]
    assert len(listed) == len(set(listed)) == 23
    assert set(listed) == set(EXAMPLE_COUNTS)
    assert list(SECTIONS) == ["Chat", "Chat Hard", "Safety", "Reasoning"]
    assert EXAMPLE_COUNTS["math-prm"] == sum(EXAMPLE_COUNTS[name] for name in CODE_SUBSETS)
    assert sum(EXAMPLE_COUNTS.values()) - EXAMPLE_COUNTS["math-prm"] + MATH_PRM_ROWS == 2985


def test_is_rewardbench_subset():
    assert is_rewardbench_subset("llmbar-adver-GPTInst")
    assert not is_rewardbench_subset("llmbar-adver-gptinst")
    assert not is_rewardbench_subset("shp")
    assert not is_rewardbench_subset(None)
