"""Ranking rows (a prompt, K responses, a score each) as pairwise comparisons, and splits by prompt.

A ranking row ``{"prompt", "responses": [...], "scores": [...]}`` says more than one comparison: every
pair of responses whose scores differ is a preference. :func:`pairs_from_rankings` turns rankings into
:class:`~genpref.data.types.PreferenceExample` s by one of two documented rules (:class:`RankingPairConfig`):

* ``all``: every pair ``i < j`` with ``|s_i − s_j| >= min_score_gap`` (pairs in response order; the
  higher-scored response is ``chosen``);
* ``best_vs_rest``: each top-scored response against every response scored at least
  ``min_score_gap`` below it.

**Ties**: two responses with equal scores carry no preference and are never paired (so the gap that
qualifies a pair is always > 0, whatever ``min_score_gap`` says). With ``best_vs_rest`` and several
responses sharing the top score, each of them is a "best" and is paired with the rest; the tied best
responses are not paired with each other.

Splits (:func:`split_by_prompt`) keep all rows of one prompt on one side, so pairs derived from one
prompt never leak between training and evaluation.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from genpref.data.load import LoadReport, OnError, load_preferences, load_rankings
from genpref.data.readers import _BadRecord, _open
from genpref.data.types import PreferenceExample, Prompt, RankingExample
from genpref.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class RankingPairConfig:
    """How ranking rows (prompt, responses, scores) become pairwise comparisons."""

    rule: Literal["all", "best_vs_rest"] = "all"
    """all: every pair of responses with different scores; best_vs_rest: each top-scored response
    against every lower-scored one. Equal scores are never paired (a tie carries no preference)."""
    min_score_gap: float = 0.0
    """Keep a pair only if its score gap is at least this (0: any gap > 0). E.g. 3 on 1-10 grades
    keeps clear preferences and drops near-ties whose order is mostly grader noise."""
    margin_per_score: float = 0.0
    """If > 0, each pair's margin (logit units, used by loss=hard) is this times its score gap."""
    empty_responses: Literal["drop", "reject_row"] = "drop"
    """An empty or whitespace-only response in a ranking row: drop it (with its score; logged) and keep
    the rest of the row, or treat the whole row as bad (data.on_error then decides)."""
    max_pairs_per_prompt: int | None = None
    """Keep at most this many pairs per prompt: the largest gaps first (response order among equal
    gaps). Bounds how much a prompt with many responses (K(K-1)/2 pairs) weighs in training."""

    def __post_init__(self) -> None:
        if self.min_score_gap < 0:
            raise ConfigError(f"data.ranking.min_score_gap must be >= 0, got {self.min_score_gap}")
        if self.margin_per_score < 0:
            raise ConfigError(f"data.ranking.margin_per_score must be >= 0, got {self.margin_per_score}")
        if self.max_pairs_per_prompt is not None and self.max_pairs_per_prompt < 1:
            raise ConfigError(
                f"data.ranking.max_pairs_per_prompt must be >= 1 or null, got {self.max_pairs_per_prompt}"
            )


def _candidate_pairs(scores: Sequence[float], cfg: RankingPairConfig) -> list[tuple[int, int]]:
    """``(winner, loser)`` index pairs of one ranking under ``cfg`` (before the per-prompt cap)."""
    k = len(scores)
    if cfg.rule == "all":
        pairs = [(i, j) if scores[i] > scores[j] else (j, i) for i in range(k) for j in range(i + 1, k)]
    else:
        top = max(scores)
        pairs = [(i, j) for i in range(k) if scores[i] == top for j in range(k) if scores[j] < top]
    return [
        (w, loser)
        for w, loser in pairs
        if scores[w] - scores[loser] >= cfg.min_score_gap and scores[w] > scores[loser]
    ]


def ranking_pair_indices(
    ranking: RankingExample, config: RankingPairConfig | None = None
) -> list[tuple[int, int]]:
    """``(chosen index, rejected index)`` pairs of one scored ranking under ``config``.

    Pairs whose two texts are identical (the same answer graded twice) are left out: no preference.
    """
    cfg = config or RankingPairConfig()
    if ranking.scores is None:
        raise DataError(
            "ranking has no scores to order its responses",
            source=ranking.origin or None,
            fix="add 'scores': one number per response",
        )
    s, texts = ranking.scores, ranking.responses
    pairs = [(w, lo) for w, lo in _candidate_pairs(s, cfg) if texts[w].strip() != texts[lo].strip()]
    if cfg.max_pairs_per_prompt is not None:
        # stable sort: among equal gaps the response order is kept
        pairs = sorted(pairs, key=lambda p: s[p[1]] - s[p[0]])[: cfg.max_pairs_per_prompt]
    return pairs


def pairs_from_rankings(
    rankings: Iterable[RankingExample], config: RankingPairConfig | None = None
) -> list[PreferenceExample]:
    """Pairwise comparisons from scored rankings, by the rule in ``config`` (default: all pairs, any gap).

    The higher-scored response of each pair is ``chosen`` (see :func:`ranking_pair_indices`).
    Rankings without scores raise a DataError. The number of response pairs the rule dropped (ties,
    small gaps, identical texts, the per-prompt cap) is logged at INFO level.
    """
    cfg = config or RankingPairConfig()
    pairs: list[PreferenceExample] = []
    n_possible = 0
    for ranking in rankings:
        n_possible += len(ranking.responses) * (len(ranking.responses) - 1) // 2
        for w, lo in ranking_pair_indices(ranking, cfg):
            gap = ranking.scores[w] - ranking.scores[lo]
            margin = cfg.margin_per_score * gap if cfg.margin_per_score > 0 else None
            pairs.append(
                PreferenceExample(
                    ranking.prompt,
                    ranking.responses[w],
                    ranking.responses[lo],
                    margin=margin,
                    origin=ranking.origin,
                )
            )
    if n_possible > len(pairs):
        logger.info(
            "pairs_from_rankings (%s, min gap %g): %d of %d response pairs kept",
            cfg.rule,
            cfg.min_score_gap,
            len(pairs),
            n_possible,
        )
    return pairs


def prompt_key(prompt: Prompt) -> str:
    """A hashable, order-preserving key for a text or conversational prompt."""
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True)


def split_by_prompt(rows: Sequence[T], eval_fraction: float, seed: int = 0) -> tuple[list[T], list[T]]:
    """``(train, eval)`` with whole prompts on one side: no prompt appears in both.

    The distinct prompts (rows need a ``prompt`` attribute: pairs, rankings, completions) are shuffled
    with ``seed`` and the first ``round(eval_fraction × number of prompts)`` go to eval (at least one
    when ``eval_fraction > 0`` and there are two or more prompts). Rows keep their order within each side.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ConfigError(f"eval_fraction must lie in [0, 1), got {eval_fraction}")
    keys = list(dict.fromkeys(prompt_key(row.prompt) for row in rows))
    random.Random(seed).shuffle(keys)
    n_eval = round(eval_fraction * len(keys))
    if eval_fraction > 0 and len(keys) > 1:
        n_eval = min(max(n_eval, 1), len(keys) - 1)
    held_out = set(keys[:n_eval])
    train = [row for row in rows if prompt_key(row.prompt) not in held_out]
    evals = [row for row in rows if prompt_key(row.prompt) in held_out]
    return train, evals


def is_ranking_source(source: Any, split: str = "train") -> bool:
    """Whether the first parseable row of ``source`` is a ranking row (has ``responses``)."""
    _, rows = _open(source, split)
    for _, row in rows:
        if not isinstance(row, _BadRecord):
            return "responses" in row
    return False


def load_comparisons(
    source: Any,
    *,
    split: str = "train",
    on_error: OnError = "raise",
    rejects_path: str | Path | None = None,
    ranking: RankingPairConfig | None = None,
) -> LoadReport:
    """Pairwise comparisons from a pair file or a ranking file (detected from its first row).

    Ranking rows become pairs by :func:`pairs_from_rankings` with ``ranking``; the report's
    ``examples`` are the pairs, its ``n_read`` and ``rejected`` count ranking rows.
    """
    if not is_ranking_source(source, split):
        return load_preferences(source, split=split, on_error=on_error, rejects_path=rejects_path)
    ranking = ranking or RankingPairConfig()
    report = load_rankings(
        source,
        split=split,
        on_error=on_error,
        rejects_path=rejects_path,
        drop_empty_responses=ranking.empty_responses == "drop",
    )
    pairs = pairs_from_rankings(report.examples, ranking)
    logger.info("%s: %d ranking rows -> %d pairs", report.source, len(report.examples), len(pairs))
    return LoadReport(pairs, report.rejected, report.n_read, report.source, report.rejects_path)
