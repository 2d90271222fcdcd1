"""Resumable stages: each writes its outputs, then a ``<stage>.done.json`` marker with the config it ran with.

A rerun skips a stage whose marker matches the current config; a marker that differs is reported with
the changed values (its outputs no longer match the config), never silently reused or overwritten.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from genpref.atomic_io import atomic_write_jsonl, atomic_write_text
from genpref.errors import ConfigError


def _digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Stage:
    def __init__(self, folder: Path, name: str, config: dict) -> None:
        self.folder, self.name, self.config = Path(folder), name, config
        self.key = _digest(config)
        self.marker = self.folder / f"{name}.done.json"

    def done(self) -> bool:
        """True when finished with this config; raises when finished with another."""
        if not self.marker.exists():
            self.started = time.perf_counter()  # the stage runs now: its wall time goes in the marker
            return False
        saved = json.loads(self.marker.read_text())
        if saved["key"] != self.key:
            before, now = saved["config"], json.loads(json.dumps(self.config, default=str))
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise ConfigError(
                f"stage '{self.name}' in {self.folder} was completed with a different config "
                f"(changed: {', '.join(changed)}).\n  fix: restore those values to resume, or use a new output_dir"
            )
        return True

    def finish(self, **summary) -> None:
        if hasattr(self, "started"):
            summary["seconds"] = round(time.perf_counter() - self.started, 2)
        atomic_write_text(
            self.marker,
            json.dumps(
                {"key": self.key, "config": json.loads(json.dumps(self.config, default=str)), **summary},
                indent=2,
            ),
        )

    def summary(self) -> dict:
        """What ``finish`` recorded for the finished stage (its keyword arguments and ``seconds``)."""
        saved = json.loads(self.marker.read_text())
        return {k: v for k, v in saved.items() if k not in ("key", "config")}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_jsonl(path, rows)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
