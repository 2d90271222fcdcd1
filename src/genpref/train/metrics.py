"""Metric logging: a JSONL file (always) plus TensorBoard / W&B trackers when installed."""

from __future__ import annotations

import json
import math
from pathlib import Path


class MetricsLog:
    """Append-only JSONL metrics, written by the main process only.

    On resume the file is cut back to the resumed step, so the curve has no duplicates.
    """

    def __init__(self, path: Path, enabled: bool, resume_step: int | None = None, accelerator=None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.accelerator = accelerator
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, **values: float | int | str) -> None:
        if not self.enabled:
            return
        row = {"step": step}
        for key, value in values.items():
            row[key] = round(value, 6) if isinstance(value, float) and math.isfinite(value) else value
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.accelerator is not None and self.accelerator.trackers:
            numeric = {k: v for k, v in values.items() if isinstance(v, int | float)}
            self.accelerator.log(numeric, step=step)


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
