"""Cyclic preference datasets from multi-aspect ratings (Zhang et al., arXiv 2410.02197, Table 1).

Input rows hold several responses to one prompt, each rated on several criteria, in either form:

* UltraFeedback (``openbmb/UltraFeedback``): ``{"instruction": str, "completions": [{"response": str,
  "annotations": {"instruction_following": {"Rating": "4", "Rationale": ...}, "honesty": {...},
  "truthfulness": {"Type": [...], "Rating": "3", ...}, "helpfulness": {...}}}, ...]}``. Ratings are
  strings "1".."5", or "N/A" where the annotator gave none;
* flat: ``{"prompt": str, "responses": [{"text": str, "ratings": {"instruction_following": 4, ...}}]}``
  (numbers, numeric strings, or "N/A"/null).

For each left-out criterion a dataset (``no_instruction_following``, ``no_honesty``, ...) is built
from the other three: per prompt, cycles of three responses A ≻ B ≻ C ≻ A, each edge decided by a
different one of the three criteria. Each cycle becomes three comparisons (``chosen`` ≻ ``rejected``)
with ``subset`` = the deciding criterion and origin ``"<source>:<line>#cycle<k>:edge<e>"``.

Rules for ties and ambiguity (exactly what the code does):

1. An edge X ≻ Y decided by criterion c needs both ratings on c present and ``rating_c(X) >
   rating_c(Y)`` strictly. Equal ratings, or a missing or "N/A" rating on c, make that edge unusable;
   the same response can still take part in edges decided by other criteria.
2. Responses with empty text, or with the same text as an earlier response of the prompt, are dropped
   (counted). Prompts with fewer than 3 remaining responses are skipped (counted) in every dataset.
3. A candidate is a set of three responses, a cyclic orientation of it, and an assignment of the three
   criteria to its three edges, one criterion per edge, that satisfies rule 1. Its strength is
   ``(smallest rating gap of its edges, sum of its gaps)``, compared lexicographically.
4. A set of three responses is cyclic if it has at least one candidate. It counts once, however many
   orientations and assignments qualify, and is represented by its strongest candidate.
5. Per prompt, cyclic sets are ranked by strength, strongest first, and the first
   ``max_cycles_per_prompt`` are kept (``None``: all). Cycles kept from one prompt may share responses.
6. Equal strengths (between candidates of one set, or between sets) are broken by a random order drawn
   from ``seed``, the dataset name and the prompt text: deterministic, independent of the order of
   the rows, and changed by ``seed`` only where strengths tie.
7. A cycle is written starting at the response that comes first in the row: edge 0 is A ≻ B,
   edge 1 is B ≻ C, edge 2 is C ≻ A.
8. With ``transitive_triples=True``, a prompt without a cyclic set contributes instead its strongest
   *transitive* triple (A ≻ B, B ≻ C and A ≻ C, one criterion per edge, same rules; origin
   ``#chain<k>``), so that cyclic and transitive triples can be mixed.
9. ``cycle_length=L`` (4 or 5; not in the paper) looks for cycles through L responses instead: each
   edge decided by one of the three criteria and every criterion deciding at least one edge (for L = 3
   this is rule 3). Prompts with fewer than L responses are skipped.

The :class:`BuildReport` counts prompts read, prompts skipped and why, and per dataset the prompts
with a cycle, the cycles kept and the prompts without one.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genpref.cyclic.graph import (
    Comparison,
    comparisons_from_examples,
    comparisons_from_rankings,
    prompt_key,
)
from genpref.data.load import load_preferences, load_rankings, write_records
from genpref.data.readers import read_records
from genpref.data.types import PreferenceExample, Prompt
from genpref.errors import DataError

CRITERIA = ("instruction_following", "honesty", "truthfulness", "helpfulness")
"""UltraFeedback's four annotation aspects, in the order of its annotation code."""
NA_MARKERS = ("", "N/A", "NA", "NONE")
"""Rating strings read as "no rating" (case-insensitive); UltraFeedback writes "N/A"."""


@dataclass
class RatedResponse:
    text: str
    ratings: dict[str, float | None]
    """Criterion → rating; None (or absent) when the rating is missing or "N/A"."""


@dataclass
class RatedPrompt:
    prompt: Prompt
    responses: list[RatedResponse]
    origin: str


@dataclass
class BuildReport:
    """What :func:`build_cyclic` produced, and what it skipped and why."""

    datasets: dict[str, list[PreferenceExample]]
    """Dataset name (``"no_<criterion>"``) → its comparisons, one per cycle edge."""
    prompts_read: int = 0
    skipped_few_responses: int = 0
    """Prompts with fewer than 3 (``cycle_length``) usable responses, skipped in every dataset."""
    responses_dropped: int = 0
    """Responses with empty text or a duplicate of an earlier response's text."""
    missing_ratings: dict[str, int] = field(default_factory=dict)
    """Criterion → responses (after dropping) with no usable rating on it ("N/A" or absent)."""
    prompts_with_cycle: dict[str, int] = field(default_factory=dict)
    cycles: dict[str, int] = field(default_factory=dict)
    no_cycle: dict[str, int] = field(default_factory=dict)
    """Prompts not skipped but without a cycle under the dataset's criteria."""
    transitive: dict[str, int] = field(default_factory=dict)
    """Transitive triples added (only with ``transitive_triples=True``)."""

    def summary(self) -> str:
        lines = [
            f"read {self.prompts_read} prompts; skipped {self.skipped_few_responses} with too few usable "
            f"responses; dropped {self.responses_dropped} empty or duplicate responses",
        ]
        if any(self.missing_ratings.values()):
            missing = ", ".join(f"{c} {n}" for c, n in self.missing_ratings.items() if n)
            lines.append(f"responses without a usable rating: {missing}")
        for name, examples in self.datasets.items():
            line = (
                f"{name}: {self.prompts_with_cycle[name]} prompts with a cycle, {self.cycles[name]} "
                f"cycles, {len(examples)} comparisons; {self.no_cycle[name]} prompts without a cycle"
            )
            if self.transitive.get(name):
                line += f" ({self.transitive[name]} transitive triples added)"
            lines.append(line)
        return "\n".join(lines)


# ---------------------------------------------------------------- reading rows


def _rating(value: Any, where: str) -> float | None:
    if isinstance(value, dict):  # UltraFeedback: {"Rating": "4", "Rationale": ...}
        value = value.get("Rating")
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().upper() in NA_MARKERS:
            return None
        try:
            value = float(value)
        except ValueError:
            raise DataError(f"rating {value!r} is not a number or 'N/A'", field=where) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"rating {value!r} is not a finite number", field=where)
    return float(value)


_FORMATS = {  # list field → (prompt field, response text field, ratings field)
    "completions": ("instruction", "response", "annotations"),  # UltraFeedback
    "responses": ("prompt", "text", "ratings"),  # flat
}


def _parse_row(row: dict) -> tuple[Prompt, list[RatedResponse]]:
    list_key = next((key for key in _FORMATS if key in row), None)
    if list_key is None:
        fix = "rows need 'instruction' + 'completions' (UltraFeedback) or 'prompt' + 'responses'"
        raise DataError("no 'completions' or 'responses' field", field="completions", fix=fix)
    prompt_key, text_key, ratings_key = _FORMATS[list_key]
    prompt = row.get(prompt_key, row.get("prompt"))
    if not (isinstance(prompt, str) and prompt.strip()) and not (isinstance(prompt, list) and prompt):
        raise DataError("missing or empty prompt", field=prompt_key)
    items = row[list_key]
    if not isinstance(items, list):
        raise DataError(f"expected a list, got {type(items).__name__}", field=list_key)
    responses = []
    for i, item in enumerate(items):
        where = f"{list_key}[{i}]"
        if not isinstance(item, dict):
            raise DataError(f"expected an object, got {type(item).__name__}", field=where)
        ratings = item.get(ratings_key) or {}
        if not isinstance(ratings, dict):
            raise DataError(
                f"expected an object, got {type(ratings).__name__}", field=f"{where}.{ratings_key}"
            )
        text = item.get(text_key)
        parsed = {k: _rating(v, f"{where}.{ratings_key}.{k}") for k, v in ratings.items()}
        responses.append(RatedResponse(text if isinstance(text, str) else "", parsed))
    return prompt, responses


def read_rated_prompts(rows: Any, *, split: str = "train") -> Iterable[RatedPrompt]:
    """Yield each row of ``rows`` (a file, list of dicts, ``datasets`` object) as a :class:`RatedPrompt`.

    Empty and duplicate responses are left in; :func:`build_cyclic` drops and counts them.
    """
    for source, line, row in read_records(rows, split=split):
        origin = f"{source}:{line}"
        try:
            prompt, responses = _parse_row(row)
        except DataError as exc:
            raise DataError(exc.message, source=source, line=line, field=exc.field, fix=exc.fix) from None
        yield RatedPrompt(prompt, responses, origin)


# ---------------------------------------------------------------- finding cycles

Edge = tuple[int, int, str]
"""``(winner index, loser index, deciding criterion)``."""


def _shapes(length: int, cyclic: bool) -> list[list[tuple[int, int]]]:
    """Edge lists over local positions ``0..length-1``: every directed cycle, or every chain.

    A cycle visits the positions in some order and returns to the first; a chain is the same path
    with the closing edge reversed (first ≻ last), so it is transitive.
    """
    if cyclic:  # fix position 0 first so that each directed cycle appears once
        orders = [(0, *rest) for rest in itertools.permutations(range(1, length))]
    else:
        orders = list(itertools.permutations(range(length)))
    closing = (lambda o: (o[-1], o[0])) if cyclic else (lambda o: (o[0], o[-1]))
    return [[*zip(o, o[1:]), closing(o)] for o in orders]


def _gap(responses: list[RatedResponse], winner: int, loser: int, criterion: str) -> float | None:
    high, low = responses[winner].ratings.get(criterion), responses[loser].ratings.get(criterion)
    if high is None or low is None or high <= low:
        return None
    return high - low


def _best_candidate(responses, members, shapes, assignments, rng) -> tuple | None:
    """Strongest ``(strength, tie-break, edges)`` on the responses ``members``, or None."""
    best = None
    for shape in shapes:
        pairs = [(members[a], members[b]) for a, b in shape]
        for assignment in assignments:
            gaps = [_gap(responses, w, lo, c) for (w, lo), c in zip(pairs, assignment)]
            if None in gaps:
                continue
            key = ((min(gaps), sum(gaps)), rng.random())
            if best is None or key > best[:2]:
                best = (*key, [(w, lo, c) for (w, lo), c in zip(pairs, assignment)])
    return best


def _canonical_cycle(edges: list[Edge]) -> list[Edge]:
    """Rotate a cycle so that it starts at the response that comes first in the row."""
    start = min(range(len(edges)), key=lambda e: edges[e][0])
    return edges[start:] + edges[:start]


def _select(prompt: RatedPrompt, length: int, cyclic: bool, criteria, limit, rng) -> list[list[Edge]]:
    shapes = _shapes(length, cyclic)
    # every edge decided by one criterion, every criterion deciding at least one edge
    assignments = [a for a in itertools.product(criteria, repeat=length) if set(a) == set(criteria)]
    found = []
    for members in itertools.combinations(range(len(prompt.responses)), length):
        best = _best_candidate(prompt.responses, members, shapes, assignments, rng)
        if best is not None:
            found.append(best)
    found.sort(key=lambda candidate: candidate[:2], reverse=True)
    selected = [edges for _, _, edges in (found if limit is None else found[:limit])]
    return [_canonical_cycle(edges) for edges in selected] if cyclic else selected


def _examples(prompt: RatedPrompt, selected, kind: str) -> list[PreferenceExample]:
    out = []
    for k, edges in enumerate(selected):
        for e, (winner, loser, criterion) in enumerate(edges):
            chosen, rejected = prompt.responses[winner].text, prompt.responses[loser].text
            origin = f"{prompt.origin}#{kind}{k}:edge{e}"
            out.append(PreferenceExample(prompt.prompt, chosen, rejected, subset=criterion, origin=origin))
    return out


def build_cyclic(
    rows: Any,
    *,
    criteria: tuple[str, ...] = CRITERIA,
    max_cycles_per_prompt: int | None = 1,
    seed: int = 0,
    transitive_triples: bool = False,
    cycle_length: int = 3,
) -> BuildReport:
    """Leave-one-criterion-out cyclic datasets from rated rows, with counts (rules in the module doc).

    Args:
        rows: a file (JSONL/JSON/Parquet/CSV), a list of row dicts, or a ``datasets`` object.
        criteria: the rating criteria; one dataset per criterion left out (at least 3 remain).
        max_cycles_per_prompt: strongest cycles kept per prompt and dataset; None keeps all.
        seed: breaks ties between equally strong candidates.
        transitive_triples: prompts without a cycle contribute their strongest transitive triple.
        cycle_length: responses per cycle (3 as in the paper; 4 or 5 reuse a criterion, rule 3).
    """
    if len(criteria) < 4:
        raise ValueError(f"leave-one-out needs at least 4 criteria, got {criteria}")
    if not 3 <= cycle_length <= 5:
        raise ValueError(f"cycle_length must be 3, 4 or 5, got {cycle_length}")
    if max_cycles_per_prompt is not None and max_cycles_per_prompt < 1:
        raise ValueError(f"max_cycles_per_prompt must be >= 1 or None, got {max_cycles_per_prompt}")
    names = {left_out: f"no_{left_out}" for left_out in criteria}
    report = BuildReport(datasets={name: [] for name in names.values()})
    report.missing_ratings = dict.fromkeys(criteria, 0)
    for counts in (report.prompts_with_cycle, report.cycles, report.no_cycle, report.transitive):
        counts.update(dict.fromkeys(names.values(), 0))
    for prompt in read_rated_prompts(rows):
        report.prompts_read += 1
        seen, kept = set(), []
        for response in prompt.responses:
            if response.text.strip() and response.text not in seen:
                seen.add(response.text)
                kept.append(response)
        report.responses_dropped += len(prompt.responses) - len(kept)
        prompt.responses = kept
        for criterion in criteria:
            report.missing_ratings[criterion] += sum(r.ratings.get(criterion) is None for r in kept)
        if len(kept) < cycle_length:
            report.skipped_few_responses += 1
            continue
        prompt_text = json.dumps(prompt.prompt, ensure_ascii=False)
        for left_out, name in names.items():
            used = tuple(c for c in criteria if c != left_out)
            rng = random.Random(f"{seed}|{name}|{prompt_text}")
            cycles = _select(prompt, cycle_length, True, used, max_cycles_per_prompt, rng)
            if cycles:
                report.prompts_with_cycle[name] += 1
                report.cycles[name] += len(cycles)
                report.datasets[name] += _examples(prompt, cycles, "cycle")
                continue
            report.no_cycle[name] += 1
            if transitive_triples:
                chains = _select(prompt, 3, False, used, max_cycles_per_prompt, rng)
                report.transitive[name] += len(chains)
                report.datasets[name] += _examples(prompt, chains, "chain")
    return report


def build_cyclic_datasets(rows: Any, **kwargs) -> dict[str, list[PreferenceExample]]:
    """``build_cyclic(rows, **kwargs).datasets``: dataset name → comparisons (see :func:`build_cyclic`)."""
    return build_cyclic(rows, **kwargs).datasets


def write_datasets(datasets: dict[str, list[PreferenceExample]], output_dir: str | Path) -> dict[str, Path]:
    """Write each dataset to ``output_dir/<name>.jsonl`` (explicit format, read by ``load_preferences``).

    Rows are ``{"prompt", "chosen", "rejected", "subset", "origin"}``; the loader ignores ``origin``.
    """
    paths = {}
    for name, examples in datasets.items():
        records = (
            {
                "prompt": e.prompt,
                "chosen": e.chosen,
                "rejected": e.rejected,
                "subset": e.subset,
                "origin": e.origin,
            }
            for e in examples
        )
        paths[name] = write_records(records, Path(output_dir) / f"{name}.jsonl")
    return paths


def comparisons_from_rated(
    rows: Any, criteria: tuple[str, ...] = CRITERIA, *, split: str = "train"
) -> list[Comparison]:
    """Every strict comparison of every criterion: ``((prompt, winner text), (prompt, loser text), 1.0)``.

    The all-criteria view of rated rows, for :func:`genpref.cyclic.graph.analyze_comparisons`.
    """
    comparisons: list[Comparison] = []
    for prompt in read_rated_prompts(rows, split=split):
        key = prompt_key(prompt.prompt)
        responses = [r for r in prompt.responses if r.text.strip()]
        for (i, a), (j, b) in itertools.combinations(enumerate(responses), 2):
            if a.text == b.text:
                continue
            for criterion in criteria:
                for winner, loser in ((i, j), (j, i)):
                    if _gap(responses, winner, loser, criterion) is not None:
                        comparisons.append(((key, responses[winner].text), (key, responses[loser].text), 1.0))
    return comparisons


def comparisons_from_file(source: Any, *, split: str = "train") -> list[Comparison]:
    """Comparisons from a pairwise preference file, ranking rows with scores, or rated rows.

    The first row decides the format: ``completions`` or ``responses`` holding rated objects → every
    strict comparison of every criterion (:func:`comparisons_from_rated`); ``responses`` holding texts
    → pairs of distinct scores; otherwise pairwise rows (``prompt``/``chosen``/``rejected``, any format
    ``load_preferences`` reads).
    """
    _, _, first = next(iter(read_records(source, split=split)), (None, None, {}))
    responses = first.get("responses")
    rated = isinstance(responses, list) and any(isinstance(r, dict) and "ratings" in r for r in responses)
    if "completions" in first or rated:
        return comparisons_from_rated(source, split=split)
    if "responses" in first:
        return comparisons_from_rankings(load_rankings(source, split=split).examples)
    return comparisons_from_examples(load_preferences(source, split=split).examples)
