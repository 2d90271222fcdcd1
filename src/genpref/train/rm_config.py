"""Config of ``genpref rm train`` (kept free of heavy imports so ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.models.config import PreferenceModelConfig
from genpref.train.config import OptimConfig, TrainConfig


@dataclass
class RMDataConfig:
    """Training and evaluation data."""

    train: str | None = None
    """Training comparisons: a JSONL/JSON/Parquet/CSV file or a hub dataset name."""
    eval: str | None = None
    """Evaluation comparisons (same formats); default: hold out eval_fraction of train."""
    split: str = "train"
    """Split name for hub datasets (train)."""
    eval_split: str = "test"
    """Split name for hub datasets (eval)."""
    eval_fraction: float = 0.0
    """Fraction of train held out for evaluation when eval is not given."""
    on_error: Literal["raise", "skip"] = "raise"
    """Bad rows: raise (stop with file, line, field) or skip (written to the rejects file)."""
    rejects: str | None = None
    """Rejects file for on_error=skip (default OUTPUT_DIR/rejects.jsonl)."""
    limit: int | None = None
    """Use at most this many training rows (after validation)."""
    eval_limit: int | None = None
    """Use at most this many evaluation rows."""


@dataclass
class RMTrainConfig:
    """genpref rm train: fit a BT, GPM or PairPM preference model."""

    model: PreferenceModelConfig = field(default_factory=PreferenceModelConfig)
    """The preference model."""
    data: RMDataConfig = field(default_factory=RMDataConfig)
    """Data."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""
    loss: Literal["hard", "soft", "regression"] = "hard"
    """hard: -log σ(z - margin); soft: cross-entropy on the row's prob; regression: ½(z - t)²."""
    regression_clip: float = 5.0
    """Regression loss: target logit bound for hard labels."""
    eval_batch_size: int = 32
    """Batch size for evaluation."""
    output_dir: str = "runs/rm"
    """Run folder: checkpoints/, final/, metrics.jsonl, eval_results.json, config.yaml."""
    resume: bool = False
    """Continue from the newest complete checkpoint in output_dir."""
