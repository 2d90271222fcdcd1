"""Evaluation: preference metrics, RewardBench section scores and win-rate statistics."""

from genpref.eval.metrics import (
    OVERALL,
    expected_calibration_error,
    pairwise_consistency,
    per_subset_metrics,
    preference_metrics,
)
from genpref.eval.rewardbench import EXAMPLE_COUNTS, SECTIONS, is_rewardbench_subset, section_scores
from genpref.eval.stats import length_controlled_winrate, mean_confidence_interval, wilson_interval

__all__ = [
    "EXAMPLE_COUNTS",
    "OVERALL",
    "SECTIONS",
    "expected_calibration_error",
    "is_rewardbench_subset",
    "length_controlled_winrate",
    "mean_confidence_interval",
    "pairwise_consistency",
    "per_subset_metrics",
    "preference_metrics",
    "section_scores",
    "wilson_interval",
]
