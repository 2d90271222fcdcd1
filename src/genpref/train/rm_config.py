"""Config of ``genpref rm train`` (kept free of heavy imports so ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.models.config import PreferenceModelConfig
from genpref.train.config import DataConfig, OptimConfig, TrainConfig
from genpref.validate import at_least


@dataclass
class RMTrainConfig:
    """genpref rm train: fit a BT, GPM or PairPM preference model."""

    model: PreferenceModelConfig = field(default_factory=PreferenceModelConfig)
    """The preference model."""
    data: DataConfig = field(default_factory=DataConfig)
    """Data."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""
    loss: Literal["hard", "soft", "regression"] = "hard"
    """hard: -log σ(z - margin); soft: cross-entropy on the row's prob; regression: ½(z - t)²."""
    regression_clip: float = 5.0
    """Regression loss: target logit bound for hard labels."""
    center_rewards_coefficient: float = 0.0
    """BT only: add this × (r_chosen + r_rejected)² to each pair's loss (reward centring, Eisenstein et al.
    2023; TRL's ``center_rewards_coefficient``, 0.01 in its docs). 0: off."""
    cache_frozen_features: bool = True
    """With train.finetune=frozen: run the backbone once over each distinct training sequence before the
    first step and train the heads on the stored pooled states (``genpref.models.frozen_features``): the
    same updates as running the frozen backbone at every step, without its cost. Needs
    train.disable_dropout (a cached feature has no dropout); false runs the backbone at every step."""
    eval_batch_size: int = 32
    """Batch size for evaluation (and for computing cached frozen features)."""
    output_dir: str = "runs/rm"
    """Run folder: checkpoints/, final/, metrics.jsonl, eval_results.json, config.yaml."""
    resume: bool = False
    """Continue from the newest complete checkpoint in output_dir."""
    overwrite: bool = False
    """Delete a finished or interrupted run in output_dir and start again (not with resume)."""

    def __post_init__(self) -> None:
        at_least("eval_batch_size", self.eval_batch_size, 1)
        at_least("regression_clip", self.regression_clip, 0)
        at_least("center_rewards_coefficient", self.center_rewards_coefficient, 0)
        from genpref.errors import ConfigError

        if self.train.finetune == "frozen" and self.cache_frozen_features and not self.train.disable_dropout:
            raise ConfigError(
                "cache_frozen_features stores the frozen backbone's features once, without dropout; "
                "train.disable_dropout=false asks for dropout at every step.\n"
                "  fix: set train.disable_dropout: true (the default), or cache_frozen_features: false"
            )
        if self.center_rewards_coefficient > 0 and self.model.type != "bt":
            raise ConfigError(
                f"center_rewards_coefficient applies to a BT reward model; this model is {self.model.type!r}.\n"
                "  fix: set center_rewards_coefficient: 0, or model.type: bt"
            )
