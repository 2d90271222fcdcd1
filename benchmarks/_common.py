"""Helpers shared by the benchmark scripts: machine description, peak memory, JSON output.

Kept free of genpref and torch imports at module level so that a benchmark's ``--help`` is instant
and its parent process (which only spawns workers) stays small.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.util
import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def offline_hub() -> None:
    """Make every Hugging Face lookup local (benchmarks must run with no network)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(repo: Path = REPO_ROOT) -> str | None:
    """The checked-out commit, read from ``.git`` files directly (no git subprocess).

    Resolves ``HEAD`` → a loose ref file or a line of ``packed-refs``; ``None`` when unknown.
    Uncommitted changes are not detected.
    """
    git = repo / ".git"
    try:
        if git.is_file():  # a worktree: ".git" holds "gitdir: PATH"
            git = (repo / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head  # detached HEAD
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").exists():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip()
        packed = common / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


def genpref_source() -> dict[str, str | None]:
    """Where genpref is imported from and a SHA-256 over its ``.py`` files (path + content, sorted).

    The commit alone does not pin the code in a working tree that is being edited; the fingerprint
    does. Found with ``importlib.util.find_spec``, so nothing is imported.
    """
    spec = importlib.util.find_spec("genpref")
    if spec is None or spec.origin is None:
        return {"path": None, "sha256": None}
    root = Path(spec.origin).parent
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return {"path": str(root), "sha256": digest.hexdigest()}


def cpu_bf16_info() -> dict[str, Any]:
    """PyTorch's CPU dispatch level ("AVX2", "AVX512", ...) and whether bf16 matmuls are native (fast)."""
    from genpref.train.device import cpu_capability, cpu_has_fast_bf16

    return {"cpu_capability": cpu_capability(), "cpu_fast_bf16": cpu_has_fast_bf16()}


def machine_info() -> dict[str, Any]:
    """CPU (with its bf16 capability), core count, memory, GPU, Python/torch/transformers versions,
    date and commit."""
    import torch
    import transformers

    try:
        mem_total_gib = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 2**30
    except (ValueError, OSError):
        mem_total_gib = None
    return {
        "cpu_model": cpu_model(),
        **cpu_bf16_info(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": None if mem_total_gib is None else round(mem_total_gib, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "genpref_source": genpref_source(),
    }


def peak_rss_mib() -> float:
    """Peak resident set size of *this* process so far, in MiB.

    ``ru_maxrss`` is a high-water mark: it never goes down within a process, so compare settings by
    running each in its own process (as ``rm_accuracy.py`` does), not by reading it twice.
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table. ``columns``: (key, header, format spec such as ``'.3f'`` or ``''``)."""
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append([("-" if row.get(k) is None else format(row[k], spec)) for k, _, spec in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
