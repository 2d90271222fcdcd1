"""A run owns its folder: an OS-level lock held for the run's life, and the checks before a run starts.

The lock is ``fcntl.flock`` on ``OUTPUT_DIR/.genpref.lock``. The kernel drops it when the process dies
(even by ``kill -9``), so a lock file left by a killed run is stale by construction: the next run takes it
over and says so. A second live run on the same folder (a requeued job) stops at once, naming the other
process. Only the main process (``RANK`` 0) locks; the others of the same launch share its folder.

``config.yaml`` is what marks a folder as holding a run, and it is written with the first checkpoint
(``genpref.train.loop``): a run that fails at start-up leaves nothing that blocks the corrected rerun.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genpref.errors import ConfigError

log = logging.getLogger("genpref")

LOCK_NAME = ".genpref.lock"
_held: dict[Path, list] = {}  # resolved folder -> [open lock file, nesting depth]


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _acquire(folder: Path):
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 - held open for the run's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "{}"
        handle.close()
        info = json.loads(owner) if owner.startswith("{") else {}
        who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"
        raise ConfigError(
            f"{folder} is in use by another genpref run ({who}).\n  fix: wait for that run to end or stop "
            "it (a requeued job: cancel the duplicate), or choose another output_dir"
        ) from None
    handle.seek(0)
    previous = handle.read().strip()
    if previous.startswith("{"):
        pid = json.loads(previous).get("pid")
        if isinstance(pid, int) and pid != os.getpid():
            state = "no longer running" if not _pid_alive(pid) else "its lock was released"
            log.warning(f"{folder}: taking over the lock of an earlier run (pid {pid}, {state})")
    handle.seek(0)
    handle.truncate()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}))
    handle.flush()
    return handle


def remove_partial_writes(folder: Path) -> None:
    """Delete temporary folders/files a killed run left behind (``.step-N.tmp``, ``.final.tmp``, ...)."""
    for parent in (folder, folder / "checkpoints"):
        if parent.is_dir():
            for tmp in parent.glob(".*.tmp"):
                shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            for old in parent.glob(".*.old"):
                shutil.rmtree(old, ignore_errors=True)


def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        if child.name != LOCK_NAME:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


@contextmanager
def claim_run_dir(output_dir: str | Path, resume: bool, overwrite: bool = False) -> Iterator[Path]:
    """Own ``output_dir`` for the block: lock it, clear partial writes, and refuse to start over a run.

    Re-entrant within one process (the outermost claim does the checks). With ``overwrite`` (and not
    ``resume``) everything in the folder is deleted first.
    """
    folder = Path(output_dir)
    key = folder.resolve()
    if key in _held:
        _held[key][1] += 1
        try:
            yield folder
        finally:
            _held[key][1] -= 1
        return
    handle = _acquire(folder) if _is_main_process() else None
    _held[key] = [handle, 1]
    try:
        if handle is not None:
            remove_partial_writes(folder)
            if overwrite and not resume:
                _clear(folder)
        if not resume and not overwrite and (folder / "config.yaml").exists():
            raise ConfigError(
                f"{folder} already holds a run.\n  fix: pass --resume true to continue it, "
                "--overwrite true to delete it and start again, or choose another output_dir"
            )
        yield folder
    finally:
        del _held[key]
        if handle is not None:
            handle.close()  # releases the flock


def claim_run(cfg, overwrite: bool = False) -> contextlib.AbstractContextManager[Path]:
    """:func:`claim_run_dir` for a training config (``output_dir``, ``resume``, ``overwrite`` fields): the
    one "this folder already holds a run" check of ``rm train``, ``po train`` and ``sft``, their Python
    ``*_on`` entry points included (``overwrite`` there adds to ``cfg.overwrite``)."""
    return claim_run_dir(cfg.output_dir, cfg.resume, overwrite or cfg.overwrite)
