"""Tests for genpref.data.rankings: pair rules, ties, gaps, margins, prompt splits, config wiring."""

from __future__ import annotations

import json

import pytest

from genpref.data.paths import shared_data_dir
from genpref.data.rankings import (
    RankingPairConfig,
    load_comparisons,
    pairs_from_rankings,
    split_by_prompt,
)
from genpref.data.types import PreferenceExample, RankingExample
from genpref.errors import ConfigError

# scores 3, 1, 3, 2: responses a and c tie at the top
RANKING = RankingExample("q", ("a", "b", "c", "d"), (3.0, 1.0, 3.0, 2.0), "r.jsonl:1")


def pair_names(pairs):
    return [(p.chosen, p.rejected) for p in pairs]


def test_all_pairs_skip_ties_keep_response_order():
    """6 index pairs; (a, c) tie → 5 pairs, (i < j) order, higher score chosen."""
    pairs = pairs_from_rankings([RANKING])
    assert pair_names(pairs) == [("a", "b"), ("a", "d"), ("c", "b"), ("d", "b"), ("c", "d")]
    assert all(p.margin is None and p.label == 1.0 and p.origin == "r.jsonl:1" for p in pairs)


def test_min_gap_keeps_only_clear_preferences():
    """Gaps: a-b 2, a-d 1, c-b 2, d-b 1, c-d 1; min gap 2 keeps a-b and c-b."""
    pairs = pairs_from_rankings([RANKING], RankingPairConfig(min_score_gap=2))
    assert pair_names(pairs) == [("a", "b"), ("c", "b")]
    # min gap 0.5 keeps every non-tied pair; a gap can never qualify a tie
    assert len(pairs_from_rankings([RANKING], RankingPairConfig(min_score_gap=0.5))) == 5


def test_best_vs_rest_with_tied_best():
    """Top score 3 shared by a and c: each is paired with b and d; a and c are not paired."""
    pairs = pairs_from_rankings([RANKING], RankingPairConfig(rule="best_vs_rest"))
    assert pair_names(pairs) == [("a", "b"), ("a", "d"), ("c", "b"), ("c", "d")]
    gap2 = pairs_from_rankings([RANKING], RankingPairConfig(rule="best_vs_rest", min_score_gap=2))
    assert pair_names(gap2) == [("a", "b"), ("c", "b")]


def test_all_tied_ranking_gives_no_pairs():
    assert pairs_from_rankings([RankingExample("q", ("x", "y", "z"), (5.0, 5.0, 5.0))]) == []
    assert (
        pairs_from_rankings([RankingExample("q", ("x", "y"), (5.0, 5.0))], RankingPairConfig("best_vs_rest"))
        == []
    )


def test_margin_from_score_gap_and_cap_per_prompt():
    """margin = 0.5 × gap; the cap keeps the largest gaps first (a-b and c-b, gap 2)."""
    cfg = RankingPairConfig(margin_per_score=0.5, max_pairs_per_prompt=3)
    pairs = pairs_from_rankings([RANKING], cfg)
    assert pair_names(pairs) == [("a", "b"), ("c", "b"), ("a", "d")]
    assert [p.margin for p in pairs] == [1.0, 1.0, 0.5]


@pytest.mark.parametrize(
    "kwargs", [{"min_score_gap": -1}, {"margin_per_score": -0.1}, {"max_pairs_per_prompt": 0}]
)
def test_bad_ranking_config(kwargs):
    with pytest.raises(ConfigError, match="data.ranking"):
        RankingPairConfig(**kwargs)


def test_split_by_prompt_keeps_prompts_whole():
    rows = [PreferenceExample(f"p{i % 5}", f"c{i}", f"r{i}") for i in range(20)]
    train, evals = split_by_prompt(rows, 0.4, seed=3)
    train_prompts, eval_prompts = {r.prompt for r in train}, {r.prompt for r in evals}
    assert len(eval_prompts) == 2 and len(train_prompts) == 3  # round(0.4 × 5) prompts held out
    assert not train_prompts & eval_prompts
    assert len(train) + len(evals) == 20 and len(evals) == 8
    assert train == [r for r in rows if r.prompt in train_prompts]  # order kept
    assert split_by_prompt(rows, 0.4, seed=3) == (train, evals)  # deterministic
    # conversational prompts (lists) work too, and a tiny fraction still holds out one prompt
    conv = [PreferenceExample([{"role": "user", "content": str(i)}], "a", "b") for i in range(3)]
    assert len(split_by_prompt(conv, 0.01)[1]) == 1
    with pytest.raises(ConfigError, match="eval_fraction"):
        split_by_prompt(rows, 1.0)


def test_load_comparisons_detects_rankings(tmp_path):
    path = tmp_path / "rank.jsonl"
    rows = [
        {"prompt": "q1", "responses": ["a", "b", "c"], "scores": [1, 9, 5]},
        {"prompt": "q2", "responses": ["x"], "scores": [1]},  # bad: one response
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = load_comparisons(
        path, on_error="skip", rejects_path=tmp_path / "rej.jsonl", ranking=RankingPairConfig(min_score_gap=4)
    )
    assert pair_names(report.examples) == [("b", "a"), ("c", "a"), ("b", "c")]  # gaps 8, 4, 4
    assert report.n_read == 2 and len(report.rejected) == 1
    pair_file = tmp_path / "pairs.jsonl"
    pair_file.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    assert pair_names(load_comparisons(pair_file).examples) == [("a", "b")]


def test_empty_responses_dropped_or_row_rejected(tmp_path):
    row = {"prompt": "q", "responses": ["a", " ", "c"], "scores": [1, 9, 5]}
    assert pair_names(load_comparisons([row]).examples) == [("c", "a")]  # " " and its 9 dropped
    report = load_comparisons([row], on_error="skip", ranking=RankingPairConfig(empty_responses="reject_row"))
    assert report.examples == [] and "responses[1]" in report.rejected[0][1]
    twice = {"prompt": "q", "responses": ["same", "same ", "x"], "scores": [1, 9, 5]}
    assert pair_names(load_comparisons([twice]).examples) == [("x", "same"), ("same ", "x")]


def test_rm_config_reads_rankings_and_splits_by_prompt(tmp_path):
    """genpref rm train's loader: a ranking file with data.ranking options and eval_fraction."""
    from genpref.train.config import DataConfig
    from genpref.train.rm import load_train_eval
    from genpref.train.rm_config import RMTrainConfig

    path = tmp_path / "rank.jsonl"
    rows = [{"prompt": f"q{i}", "responses": ["a", "b", "c"], "scores": [3, 1, 2]} for i in range(10)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RMTrainConfig(
        data=DataConfig(train=str(path), eval_fraction=0.2, ranking=RankingPairConfig(rule="best_vs_rest"))
    )
    train, evals = load_train_eval(cfg, tmp_path)
    assert len(train) == 16 and len(evals) == 4  # 2 pairs per prompt, 2 of 10 prompts held out
    assert not {e.prompt for e in train} & {e.prompt for e in evals}
    assert {(e.chosen, e.rejected) for e in train} == {("a", "b"), ("a", "c")}


def test_arena_bench_pairs_match_the_data_readme():
    """The shared README counts 13,799 pairs with a grade gap >= 3; 241 of them involve one of the 27
    empty answers (one in each of 27 prompts), which the default empty_responses=drop removes."""
    data = shared_data_dir()
    if data is None or not (data / "arena_bench_v1_scored.jsonl.gz").exists():
        pytest.skip("../shared/data/arena_bench_v1_scored.jsonl.gz not found")
    report = load_comparisons(
        data / "arena_bench_v1_scored.jsonl.gz", ranking=RankingPairConfig(min_score_gap=3)
    )
    assert report.n_read == 300
    assert len(report.examples) == 13_799 - 241
    assert all(p.chosen != p.rejected for p in report.examples[:200])
