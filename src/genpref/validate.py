"""Range checks for config fields, run when a config dataclass is built (before any model loads).

Each failure is a ConfigError naming the field, the value and the allowed range.
"""

from __future__ import annotations

import warnings

from genpref.errors import ConfigError, DeprecatedName


def out_of_range(field: str, value, allowed: str, why: str = "") -> ConfigError:
    because = f" ({why})" if why else ""
    return ConfigError(f"{field}={value!r} is out of range{because}.\n  fix: use a value {allowed}")


def at_least(field: str, value: int | float | None, minimum: int | float, optional: bool = False) -> None:
    """``value >= minimum`` (``None`` allowed when ``optional``)."""
    if value is None and optional:
        return
    if value is None or value < minimum:
        raise out_of_range(field, value, f">= {minimum}" + (" (or null)" if optional else ""))


def positive(field: str, value: float | None, optional: bool = False) -> None:
    """``value > 0`` (``None`` allowed when ``optional``)."""
    if value is None and optional:
        return
    if value is None or not value > 0:
        raise out_of_range(field, value, "> 0" + (" (or null)" if optional else ""))


def between(field: str, value: float, low: float, high: float, *, open_high: bool = False) -> None:
    """``low <= value <= high`` (``< high`` with ``open_high``)."""
    if not (low <= value < high if open_high else low <= value <= high):
        raise out_of_range(field, value, f"in [{low}, {high}{')' if open_high else ']'}")


REMOVED_IN = "0.3"
"""Release that drops the deprecated spellings (each is accepted, with a warning, for one release)."""


def renamed(old: str, new: str, old_value, new_value, default=None):
    """The value of a renamed field: ``new_value``, or ``old_value`` (with a FutureWarning) when the old
    spelling was given. Both given with different values is a ConfigError."""
    if old_value is None:
        return new_value
    if new_value not in (None, default) and new_value != old_value:
        raise ConfigError(
            f"{old} and {new} are the same setting ({old} is its deprecated name) and were given different "
            f"values ({old_value!r}, {new_value!r}).\n  fix: pass only {new}"
        )
    warnings.warn(
        f"{old} is deprecated and will be removed in genpref {REMOVED_IN}; use {new}",
        DeprecatedName,
        stacklevel=3,
    )
    return old_value
