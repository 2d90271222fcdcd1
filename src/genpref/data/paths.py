"""Locating the shared real-data folder (``<repo>/../shared/data``).

The real preference files used by tests, benchmarks and examples live beside the repository, never
inside it. Code that wants them calls :func:`shared_data_dir` and copes with ``None`` (tests skip,
examples fall back to :mod:`genpref.data.synthetic` or the hub).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "GENPREF_SHARED_DATA"
"""Environment variable that overrides the search (a path to the data folder itself)."""


def _search_upwards(start: Path) -> Path | None:
    """The first ``<ancestor>/shared/data`` folder found walking up from ``start``."""
    for ancestor in (start, *start.parents):
        candidate = ancestor / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def shared_data_dir() -> Path | None:
    """The shared real-data folder, or ``None`` if it cannot be found.

    Order: the ``GENPREF_SHARED_DATA`` environment variable (used as given; ``None`` if it does not
    name a folder, so a typo is not silently replaced by another folder); else the first
    ``shared/data`` folder beside an ancestor of this file (the editable checkout: ``<repo>/../shared/data``);
    else the same search from the current working directory.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        return path.resolve() if path.is_dir() else None
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        found = _search_upwards(start)
        if found is not None:
            return found
    return None
