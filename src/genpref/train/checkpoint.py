"""Atomic directory writes and checkpoint discovery.

A checkpoint directory only ever appears complete: it is written under a temporary name in the
same parent and renamed into place (``os.replace`` is atomic on POSIX), so a crash leaves either
the previous checkpoint or the new one, never half of one. Its last file is the marker
``complete.json``: every other file with its size. A checkpoint counts only while the marker is there
and every listed file has its size (a copy or cleanup that lost a part is skipped on resume, with the
reason, in favour of the previous complete checkpoint).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from genpref.atomic_io import atomic_dir, atomic_write_text  # noqa: F401 - re-exported

STATE_FILE = "trainer_state.json"
COMPLETE_MARKER = "complete.json"

log = logging.getLogger("genpref")


def step_dir(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:08d}"


def write_complete_marker(folder: Path) -> None:
    """Write ``complete.json`` (every file under ``folder`` with its size); call it after the last part."""
    folder = Path(folder)
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != COMPLETE_MARKER
    }
    (folder / COMPLETE_MARKER).write_text(json.dumps({"files": files}, indent=1))


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None when it is."""
    marker = Path(folder) / COMPLETE_MARKER
    if not marker.is_file():
        return f"no {COMPLETE_MARKER} marker (its writing was interrupted, or an older genpref wrote it)"
    try:
        files = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"its {COMPLETE_MARKER} marker is unreadable"
    for name, size in files.items():
        part = Path(folder) / name
        if not part.is_file():
            return f"part {name} is missing"
        if part.stat().st_size != size:
            return f"part {name} has {part.stat().st_size} bytes, {size} were written"
    return None


def _step_dirs(output_dir: Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    if not root.exists():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete step checkpoints, oldest first."""
    return [p for p in _step_dirs(output_dir) if checkpoint_problem(p) is None]


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint; newer incomplete ones are reported (step and reason) and skipped."""
    for folder in reversed(_step_dirs(output_dir)):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        log.warning(f"resume: skipping checkpoint {folder.name}: {problem}; falling back to an earlier one")
    return None


def read_state(checkpoint: Path) -> dict:
    return json.loads((Path(checkpoint) / STATE_FILE).read_text())


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
