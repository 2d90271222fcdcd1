"""Every module imports (catches syntax errors and broken imports in code no other test reaches)."""

from __future__ import annotations

import importlib
import pkgutil

import genpref


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(genpref.__path__, prefix="genpref.")]
    names.remove("genpref.__main__")  # runs the CLI on import, by design
    assert "genpref.models.preference_model" in names
    for name in names:
        importlib.import_module(name)
