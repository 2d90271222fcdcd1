"""Best-of-N rows: one prompt, chosen response(s) and several rejected ones.

Two sources:

* files in RewardBench 2's row layout (Malik et al., 2025, arXiv 2506.01937)
  ``{"prompt", "chosen": [str, ...], "rejected": [str, ...], "subset"?}`` (responses may also be
  one-message assistant lists), loaded by :func:`load_best_of_n`;
* scored rankings, by the rule of :func:`best_of_n_indices`: one of the top-scored responses against
  ``n_rejected`` responses scored at least ``min_gap`` below it, drawn with a seed. On
  ``arena_bench_v1_scored`` with ``n_rejected=3`` this is RewardBench 2's best-of-4 (chance 1/4).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from genpref.data.load import LoadReport, OnError, _Bad, _load, _merge_prompt, _prompt, _require, _response
from genpref.data.types import BestOfNExample, RankingExample


def _responses(row: dict, key: str, prompt):
    raw = _require(row, key)
    if not isinstance(raw, list) or not raw:
        raise _Bad("expected a non-empty list of responses", key)
    texts = []
    for i, value in enumerate(raw):
        text, prefix = _response(value, f"{key}[{i}]")
        prompt = _merge_prompt(prompt, prefix, f"{key}[{i}]")
        texts.append(text)
    return tuple(texts), prompt


def _best_of_n_from_row(row: dict, origin: str = "") -> BestOfNExample:
    """One RewardBench-2-layout row as a :class:`BestOfNExample`; raises ``_Bad``."""
    prompt = _prompt(_require(row, "prompt"))
    chosen, prompt = _responses(row, "chosen", prompt)
    rejected, prompt = _responses(row, "rejected", prompt)
    if {c.strip() for c in chosen} & {r.strip() for r in rejected}:
        raise _Bad("a response is both chosen and rejected", "rejected", fix="remove it from one list")
    subset = row.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise _Bad(f"expected a string, got {type(subset).__name__}", "subset")
    return BestOfNExample(prompt, chosen, rejected, subset, origin)


def is_best_of_n_row(row: dict) -> bool:
    """RewardBench 2 layout: ``chosen`` is a list of responses, not one conversational message list."""
    chosen = row.get("chosen")
    return isinstance(chosen, list) and bool(chosen) and not isinstance(chosen[0], dict)


def load_best_of_n(
    source: Any,
    *,
    split: str = "test",
    on_error: OnError = "raise",
    rejects_path: str | Path | None = None,
    limit: int | None = None,
) -> LoadReport:
    """Load RewardBench-2-layout rows as :class:`BestOfNExample` s (arguments as ``load_preferences``)."""
    return _load(source, split, on_error, rejects_path, limit, _best_of_n_from_row)


def best_of_n_indices(
    ranking: RankingExample, n_rejected: int, min_gap: float, rng: random.Random
) -> tuple[int, list[int]] | None:
    """``(chosen index, rejected indices)`` for a best-of-(n_rejected + 1) set, or None if too few.

    The chosen is drawn among the responses with the top score; the rejected, without replacement,
    among those scored at most ``top − min_gap`` whose text differs from the chosen's (sorted by
    index). ``min_gap`` must be > 0: a rejected response tied with the chosen has no wrong answer.
    """
    if ranking.scores is None:
        raise ValueError(f"{ranking.origin}: best-of-N needs scores")
    if min_gap <= 0:
        raise ValueError(f"min_gap must be > 0, got {min_gap}")
    s, texts = ranking.scores, ranking.responses
    top = max(s)
    chosen = rng.choice([i for i, v in enumerate(s) if v == top])
    pool = [i for i, v in enumerate(s) if v <= top - min_gap and texts[i].strip() != texts[chosen].strip()]
    if len(pool) < n_rejected:
        return None
    return chosen, sorted(rng.sample(pool, n_rejected))
