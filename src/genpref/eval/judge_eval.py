"""Evaluate a judge on a file of pairs, scored rankings, or best-of-N rows (``genpref rm eval``).

The row layout is read from the first row:

* pairs ``{prompt, chosen, rejected}``: accuracy (ties wrong), P(chosen), log-loss, ECE, subsets;
* rankings ``{prompt, responses, scores}``: the same pair metrics on the pairs the
  :class:`~genpref.data.rankings.RankingPairConfig` rule derives, Kendall τ_b / Spearman ρ / top-1
  against the scores, and best-of-N sets drawn from each ranking;
* best-of-N ``{prompt, chosen: [..], rejected: [..], subset}`` (RewardBench 2's layout): best-of-N
  accuracy per subset, with its chance level.

Every accuracy carries a 95 % Wilson interval and sits beside the "longer response wins" baseline on
the same rows (lengths in characters, so the baseline does not depend on the judge's tokenizer);
pair accuracies are also split by whether the preferred response is the longer one. Each section
keeps its per-row ``correct`` list so that two judges can be compared row by row
(:func:`compare_results`).

One ``rank`` call per ranking or best-of-N row scores all its responses at once (K backbone forwards
for BT/GPM), and every pair, the correlations and the best-of-N set are read off that one matrix.
Rankings and best-of-N rows use the judge's score against the mixture of the K responses for
τ/ρ/top-1 (r_i − mean r for BT) and its pairwise scores s(y_i ≻ y_j) for best-of-N. RewardBench 2's
"Ties" subset has its own score upstream; here it is scored like every other subset.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from genpref.data.best_of_n import best_of_n_indices, is_best_of_n_row, load_best_of_n
from genpref.data.load import LoadReport, OnError, load_preferences, load_rankings
from genpref.data.rankings import RankingPairConfig, ranking_pair_indices
from genpref.data.readers import _BadRecord, _open
from genpref.errors import DataError
from genpref.eval.judge_metrics import (
    accuracy_with_interval,
    best_of_n_chance,
    best_of_n_correct,
    correct_rows,
    length_baseline_prob,
    length_bias_table,
    ranking_metrics,
)
from genpref.eval.metrics import per_subset_metrics
from genpref.eval.paired import mcnemar_test, paired_bootstrap
from genpref.eval.rm_eval import evaluate_features

Layout = Literal["pairs", "rankings", "best_of_n"]


@dataclass
class EvalRows:
    """Rows of one evaluation file and how they were loaded."""

    layout: Layout
    rows: list
    report: LoadReport


def detect_layout(source: Any, split: str = "test") -> Layout:
    """The layout of ``source``'s first parseable row (pairs when the file has none)."""
    _, rows = _open(source, split)
    for _, row in rows:
        if isinstance(row, _BadRecord):
            continue
        if "responses" in row:
            return "rankings"
        return "best_of_n" if is_best_of_n_row(row) else "pairs"
    return "pairs"


def load_eval_rows(
    source: Any,
    *,
    split: str = "test",
    on_error: OnError = "raise",
    rejects_path: str | Path | None = None,
    limit: int | None = None,
    ranking: RankingPairConfig | None = None,
) -> EvalRows:
    """Load ``source`` in whichever layout it has (see the module docstring)."""
    layout = detect_layout(source, split)
    kwargs = dict(split=split, on_error=on_error, rejects_path=rejects_path, limit=limit)
    if layout == "rankings":
        drop = (ranking or RankingPairConfig()).empty_responses == "drop"
        report = load_rankings(source, drop_empty_responses=drop, **kwargs)
    elif layout == "best_of_n":
        report = load_best_of_n(source, **kwargs)
    else:
        report = load_preferences(source, **kwargs)
    return EvalRows(layout, list(report.examples), report)


def _pair_section(prob_chosen, label, chosen_len, rejected_len, subsets) -> dict:
    """Pair metrics with intervals, the length baseline and the length-bias table."""
    prob, label = np.asarray(prob_chosen, dtype=np.float64), np.asarray(label, dtype=np.float64)
    table = per_subset_metrics(prob, subsets, label)
    correct, decisive = correct_rows(prob, label)
    baseline, _ = correct_rows(length_baseline_prob(chosen_len, rejected_len), label)
    for name, metrics in table.items():
        rows = decisive if name == "all" else decisive & np.array([s == name for s in subsets])
        metrics["ci95"] = accuracy_with_interval(correct[rows])["ci95"]
        metrics["length_baseline"] = accuracy_with_interval(baseline[rows])
    overall = table.pop("all")
    return {
        "overall": overall,
        "subsets": table,
        "length_baseline": overall["length_baseline"],
        "length_bias": length_bias_table(correct, chosen_len, rejected_len, label),
        "correct": correct[decisive].tolist(),
        "prob_chosen": prob.tolist(),
    }


def judge_pairs(model, examples: list, batch_size: int = 32) -> dict:
    """Pair metrics for comparison rows (rows the truncation policy drops are left out)."""
    featurized = [(ex, model.featurize(ex)) for ex in examples]
    kept = [(ex, f) for ex, f in featurized if f is not None]
    if not kept:
        raise DataError("no comparisons left to evaluate", fix="check the data file and model.max_length")
    base = evaluate_features(model, [f for _, f in kept], batch_size)
    rows = [ex for ex, _ in kept]
    section = _pair_section(
        base["prob_chosen"],
        [ex.label for ex in rows],
        [len(ex.chosen) for ex in rows],
        [len(ex.rejected) for ex in rows],
        [ex.subset for ex in rows],
    )
    for key in ("rewardbench", "pairpm_consistency"):
        if key in base:
            section[key] = base[key]
    section["dropped_by_truncation"] = len(examples) - len(kept)
    return section


def _best_of_n_section(correct: list[bool], baseline: list[bool], chance: list[float], subsets: list) -> dict:
    section = accuracy_with_interval(correct) | {
        "chance": float(np.mean(chance)) if chance else float("nan"),
        "length_baseline": accuracy_with_interval(baseline),
        "correct": list(correct),
    }
    names = sorted({s for s in subsets if s is not None})
    if names:
        ok, base = np.array(correct), np.array(baseline)
        section["subsets"] = {}
        for name in names:
            rows = np.array([s == name for s in subsets])
            section["subsets"][name] = accuracy_with_interval(ok[rows]) | {
                "length_baseline": accuracy_with_interval(base[rows])["accuracy"]
            }
    return section


def _longest_first(lengths: list[int], n_chosen: int) -> bool:
    """Length baseline for best-of-N: right iff every chosen response is longer than every rejected."""
    return min(lengths[:n_chosen]) > max(lengths[n_chosen:])


def judge_rankings(
    model,
    rankings: list,
    pair_config: RankingPairConfig | None = None,
    best_of: int = 4,
    best_of_min_gap: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = True,
) -> dict:
    """Pair, ranking and best-of-``best_of`` metrics for scored rankings (one ``rank`` call each)."""
    rng = random.Random(seed)
    probs, c_len, r_len, model_scores, given = [], [], [], [], []
    bon_ok, bon_base = [], []
    for ranking in tqdm(rankings, desc="rank", disable=not progress, leave=False):
        if ranking.scores is None:
            raise DataError("ranking row has no scores", source=ranking.origin, fix="add 'scores'")
        result = model.rank(ranking.prompt, list(ranking.responses), batch_size=batch_size)
        lengths = [len(r) for r in ranking.responses]
        model_scores.append(result.score_vs_mixture.tolist())
        given.append(list(ranking.scores))
        for w, lo in ranking_pair_indices(ranking, pair_config):
            probs.append(float(result.prob_matrix[w, lo]))
            c_len.append(lengths[w])
            r_len.append(lengths[lo])
        picked = best_of_n_indices(ranking, best_of - 1, best_of_min_gap, rng)
        if picked is not None:
            order = [picked[0], *picked[1]]
            bon_ok.append(best_of_n_correct(result.score_matrix[order][:, order], 1))
            bon_base.append(_longest_first([lengths[i] for i in order], 1))
    results: dict = {}
    if probs:
        results = _pair_section(probs, np.ones(len(probs)), c_len, r_len, [None] * len(probs))
    results["ranking"] = ranking_metrics(model_scores, given)
    results["best_of_n"] = _best_of_n_section(
        bon_ok, bon_base, [best_of_n_chance(1, best_of - 1)] * len(bon_ok), []
    ) | {"best_of": best_of, "min_gap": best_of_min_gap, "prompts_without_a_set": len(rankings) - len(bon_ok)}
    return results


def judge_best_of_n(model, rows: list, batch_size: int = 32, progress: bool = True) -> dict:
    """Best-of-N accuracy (every chosen above every rejected) for RewardBench-2-layout rows."""
    correct, baseline, chance = [], [], []
    for row in tqdm(rows, desc="best-of-N", disable=not progress, leave=False):
        responses = [*row.chosen, *row.rejected]
        result = model.rank(row.prompt, responses, batch_size=batch_size)
        correct.append(best_of_n_correct(result.score_matrix, len(row.chosen)))
        baseline.append(_longest_first([len(r) for r in responses], len(row.chosen)))
        chance.append(best_of_n_chance(len(row.chosen), len(row.rejected)))
    return {"best_of_n": _best_of_n_section(correct, baseline, chance, [r.subset for r in rows])}


def judge_rows(model, data: EvalRows, batch_size: int = 32, **ranking_kwargs) -> dict:
    """Every metric that applies to ``data``'s layout; ``{"layout": ..., **sections}``."""
    if data.layout == "pairs":
        results = judge_pairs(model, data.rows, batch_size)
    elif data.layout == "rankings":
        results = judge_rankings(model, data.rows, batch_size=batch_size, **ranking_kwargs)
    else:
        results = judge_best_of_n(model, data.rows, batch_size)
    return {"layout": data.layout, **results}


def compare_results(a: dict, b: dict, n_boot: int = 10_000, seed: int = 0) -> dict:
    """McNemar and a paired bootstrap for each section both results share (pairs, best-of-N).

    ``a`` and ``b`` are :func:`judge_rows` results on the same rows; differences are B − A.
    """
    out = {}
    for name, section_a, section_b in (
        ("pairs", a, b),
        ("best_of_n", a.get("best_of_n", {}), b.get("best_of_n", {})),
    ):
        if "correct" not in section_a or "correct" not in section_b:
            continue
        ca, cb = section_a["correct"], section_b["correct"]
        out[name] = {
            "accuracy_a": float(np.mean(ca)),
            "accuracy_b": float(np.mean(cb)),
            "mcnemar": mcnemar_test(ca, cb),
            "bootstrap": paired_bootstrap(ca, cb, n_boot=n_boot, seed=seed),
        }
    return out
