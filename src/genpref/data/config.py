"""Which rows a training command reads (``data.*`` of rm train, po train and sft; no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.data.rankings import RankingPairConfig
from genpref.validate import at_least, out_of_range


@dataclass
class DataConfig:
    """Training and evaluation data (shared by every training command)."""

    train: str | list[str] | None = None
    """Training data: a JSONL/JSON/Parquet/CSV file or a hub dataset name (pairs; SFT/KTO also take
    prompt/completion rows), or a list of them, read one after the other and concatenated (e.g.
    UltraFeedback pairs plus arena ranking rows: each source is read by its own first row)."""
    eval: str | None = None
    """Evaluation data (same formats); default: hold out eval_fraction of train."""
    split: str = "train"
    """Split name for hub datasets (train)."""
    eval_split: str = "test"
    """Split name for hub datasets (eval)."""
    eval_fraction: float = 0.0
    """Fraction of train's prompts held out for evaluation when eval is not given (split by prompt:
    all comparisons of a prompt land on the same side)."""
    on_error: Literal["raise", "skip"] = "raise"
    """Bad rows: raise (stop with file, line, field) or skip (written to the rejects file)."""
    rejects: str | None = None
    """Rejects file for on_error=skip (default OUTPUT_DIR/rejects.jsonl)."""
    limit: int | None = None
    """Use at most this many training rows: the first ones left after validation and after the
    eval_fraction hold-out (so the held-out prompts do not depend on limit)."""
    eval_limit: int | None = None
    """Use at most this many evaluation rows (the first ones)."""
    ranking: RankingPairConfig = field(default_factory=RankingPairConfig)
    """How ranking rows (prompt, responses, scores) become pairs (preference-model training only)."""

    def __post_init__(self) -> None:
        if self.eval_fraction != 0 and not 0 < self.eval_fraction < 1:
            raise out_of_range("data.eval_fraction", self.eval_fraction, "in (0, 1), or 0 for no hold-out")
        at_least("data.limit", self.limit, 1, optional=True)
        at_least("data.eval_limit", self.eval_limit, 1, optional=True)
