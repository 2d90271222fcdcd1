"""The training and evaluation rows of a training command: one rule for ``rm train``, ``po train`` and ``sft``.

Every recipe selects its rows the same way from the same ``data.*`` config (:class:`DataConfig`):

1. load and validate ``data.train`` (one source or a list, concatenated in order; bad rows raise, or go
   to the rejects file with ``on_error=skip``);
2. evaluation rows: ``data.eval`` when given, otherwise ``data.eval_fraction`` of train's *prompts*
   held out by :func:`~genpref.data.rankings.split_by_prompt` (seeded; every row of a prompt lands on
   the same side, so nothing derived from one prompt leaks into evaluation);
3. then ``data.limit`` keeps the first training rows and ``data.eval_limit`` the first evaluation rows.

Applying the limits last means the held-out prompts do not change with ``limit``, and the same config
selects the same rows in every recipe (``tests/test_data_train_eval.py``): a pair file's chosen
responses are the SFT rows, its pairs the DPO and preference-model rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genpref.data.config import DataConfig
from genpref.data.load import LoadReport
from genpref.data.rankings import split_by_prompt
from genpref.errors import ConfigError

log = logging.getLogger("genpref")

Loader = Callable[..., LoadReport]
"""``loader(source, *, split, on_error, rejects_path) -> LoadReport`` (e.g. ``load_comparisons``)."""


def load_train_eval(
    data: DataConfig, loader: Loader, output_dir: str | Path, seed: int
) -> tuple[list[Any], list[Any]]:
    """``(train, eval)`` rows of ``data`` read by ``loader``, split and limited as the module says.

    Args:
        data: the command's ``data`` config.
        loader: reads one source into a :class:`LoadReport` (pairs, comparisons or completions).
        output_dir: the run folder; rejects go to ``data.rejects`` or ``OUTPUT_DIR/rejects.jsonl``
            (``rejects_eval.jsonl`` for ``data.eval``).
        seed: shuffles the prompts of the ``eval_fraction`` hold-out (recipes pass ``train.seed``).
    """
    if data.train is None:
        raise ConfigError("data.train is required.\n  fix: pass --data.train FILE (or set it in --config)")
    output_dir = Path(output_dir)

    def read(source: Any, split: str, rejects: str) -> list[Any]:
        report = loader(source, split=split, on_error=data.on_error, rejects_path=rejects)
        log.info(report.summary())
        return list(report.examples)

    sources = data.train if isinstance(data.train, list) else [data.train]
    if not sources:
        raise ConfigError("data.train is an empty list.\n  fix: give at least one training source")
    train = []
    for i, source in enumerate(sources):  # several sources: rejects.jsonl, rejects_1.jsonl, ...
        rejects = data.rejects or str(output_dir / "rejects.jsonl")
        if i:
            rejects = str(Path(rejects).with_name(f"{Path(rejects).stem}_{i}{Path(rejects).suffix}"))
        train += read(source, data.split, rejects)
    if data.eval is not None:
        evals = read(data.eval, data.eval_split, str(output_dir / "rejects_eval.jsonl"))
    elif data.eval_fraction > 0:
        train, evals = split_by_prompt(train, data.eval_fraction, seed=seed)
        log.info(f"held out {len(evals)} rows by prompt (data.eval_fraction={data.eval_fraction})")
    else:
        evals = []
    if data.limit is not None:
        train = train[: data.limit]
    if data.eval_limit is not None:
        evals = evals[: data.eval_limit]
    if not train:
        raise ConfigError(f"data.train ({data.train}) has no usable rows")
    return train, evals
