"""User-facing errors: each names the input (file, row, field) and the fix.

The CLI prints these without a traceback and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


class GenprefError(Exception):
    """Base class for errors caused by the user's input or configuration."""


class DataError(GenprefError):
    """A bad preference row or data file.

    Args:
        message: what is wrong.
        source: the file (or dataset name) the row came from.
        line: 1-based line number (JSONL/CSV) or row index (others), when known.
        field: the offending field, when known.
        fix: how to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message, self.source, self.line, self.field, self.fix = message, source, line, field, fix
        where = source or "<data>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" field '{field}'"
        text = f"{where}: {message}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)


class ConfigError(GenprefError):
    """A bad configuration value or incompatible checkpoint."""


class DeprecatedName(FutureWarning):
    """An option given by its old name (still accepted for one release; the message names the new one)."""


class TrainingDiverged(GenprefError):
    """A non-finite loss or gradient; the last good checkpoint is kept."""


class RunInterrupted(KeyboardInterrupt):
    """A training run stopped by SIGINT or SIGTERM after writing a checkpoint (resume with --resume true)."""

    def __init__(self, signum: int, checkpoint=None) -> None:
        super().__init__(f"interrupted by signal {signum}; checkpoint {checkpoint}")
        self.signum, self.checkpoint = signum, checkpoint
