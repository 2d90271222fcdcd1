"""Argument dataclasses of the commands that have no config of their own elsewhere (``rm eval``,
``rm compare``, ``rm score``, ``rm export``, ``data cyclic``, ``data cycles``, ``demo``).

No heavy imports (``--help`` is instant); the commands themselves live in ``genpref.commands``. Field
docstrings become ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.data.rankings import RankingPairConfig
from genpref.errors import ConfigError
from genpref.validate import at_least, renamed


@dataclass(kw_only=True)
class _EvalOptions:
    """Options shared by genpref rm eval and genpref rm compare."""

    data: str
    """Rows to evaluate: comparisons (prompt/chosen/rejected), ranking rows (prompt/responses/scores) or
    RewardBench-2 rows (prompt, chosen: [..], rejected: [..], subset); JSONL/JSON/Parquet/CSV or hub name."""
    output: str | None = None
    """Write the results as JSON here."""
    split: str = "test"
    """Split name for hub datasets."""
    batch_size: int = 32
    """Comparisons (or responses of one prompt) per forward batch."""
    on_error: Literal["raise", "skip"] = "raise"
    """Bad rows: raise, or skip into the rejects file."""
    rejects: str | None = None
    """Rejects file for on_error=skip (default: next to output, or rejects.jsonl)."""
    limit: int | None = None
    """Evaluate at most this many rows."""
    ranking: RankingPairConfig = field(default_factory=RankingPairConfig)
    """Ranking rows: which response pairs are scored as comparisons."""
    best_of: int = 4
    """Ranking rows: size of the best-of-N sets (one top-scored response and best_of - 1 others)."""
    best_of_min_gap: float = 1.0
    """Ranking rows: a best-of-N set's rejected responses score at least this much below its chosen."""
    seed: int = 0
    """Seed for drawing the best-of-N sets from ranking rows (and for the bootstrap of rm compare)."""

    def __post_init__(self) -> None:
        at_least("batch_size", self.batch_size, 1)
        at_least("limit", self.limit, 1, optional=True)
        if self.best_of < 2:
            raise ConfigError(f"best_of must be >= 2, got {self.best_of}")
        if self.best_of_min_gap <= 0:
            raise ConfigError(
                f"best_of_min_gap must be > 0 (a tie has no right answer), got {self.best_of_min_gap}"
            )


@dataclass(kw_only=True)
class EvalArgs(_EvalOptions):
    """genpref rm eval: accuracy with 95% intervals beside the 'longer response wins' baseline, a
    length-bias table, log-loss, calibration and per-subset tables; for ranking rows also Kendall tau,
    Spearman rho, top-1 and best-of-4; for RewardBench-2 rows (chosen: [..], rejected: [..]) best-of-N."""

    model_path: str | None = None
    """Checkpoint folder written by genpref rm train (e.g. runs/rm/final). Required."""
    model: str | None = None
    """Deprecated name of model_path (accepted with a warning until genpref 0.3)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.model_path, self.model = renamed("model", "model_path", self.model, self.model_path), None
        if self.model_path is None:
            raise ConfigError(
                "rm eval needs the checkpoint to evaluate.\n  fix: pass --model_path FOLDER (e.g. runs/rm/final)"
            )


@dataclass(kw_only=True)
class CompareArgs(_EvalOptions):
    """genpref rm compare A B --data F: two checkpoints on the same rows, McNemar's test on per-row
    correctness (exact binomial below 25 discordant rows) and a paired bootstrap interval on B - A."""

    model_a: str
    """First checkpoint folder (A)."""
    model_b: str
    """Second checkpoint folder (B); differences are B - A."""
    n_boot: int = 10_000
    """Bootstrap replicates."""

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least("n_boot", self.n_boot, 1)


@dataclass
class ScoreArgs:
    """genpref rm score: P(chosen ≻ rejected) for comparison rows, or the K×K matrix for ranking rows."""

    model: str
    """Checkpoint folder written by genpref rm train."""
    data: str
    """Comparison rows (prompt/chosen/rejected) or ranking rows (prompt/responses)."""
    output: str | None = None
    """JSONL output (default: print to stdout)."""
    split: str = "test"
    """Split name for hub datasets."""
    batch_size: int = 32
    """Sequences per forward batch."""
    limit: int | None = None
    """Score at most this many rows."""

    def __post_init__(self) -> None:
        at_least("batch_size", self.batch_size, 1)
        at_least("limit", self.limit, 1, optional=True)


@dataclass
class ExportArgs:
    """genpref rm export: a checkpoint in another tool's format."""

    model: str
    """Checkpoint folder written by genpref rm train."""
    output: str
    """Folder to write (must not exist, or be empty)."""
    format: Literal["hf-seqcls", "paper"] = "hf-seqcls"
    """hf-seqcls: a BT decoder as transformers AutoModelForSequenceClassification (num_labels 1);
    paper: a GPM decoder in the GPM authors' released layout (value_head, prompt_head on the causal LM)."""


@dataclass
class DemoArgs:
    """genpref demo: the main job on built-in defaults (cyclic experiment, Nash experiment, BT vs GPM,
    GPO self-play)."""

    output_dir: str = "runs/demo"
    """Where runs, tables and plots go."""
    parts: list[Literal["cyclic", "nash", "rm", "selfplay"]] = field(
        default_factory=lambda: ["cyclic", "nash", "rm", "selfplay"]
    )
    """cyclic: BT/GPM/PairPM on cyclic preferences; nash: GPO/SPPO vs BT baselines on preference games
    with a known Nash equilibrium (genpref bench nash defaults); rm: BT vs GPM on real preferences (its
    GPM is the self-play judge); selfplay: one GPO iteration of SmolLM2-135M judged by that GPM, with the settings of
    benchmarks/selfplay_winrate.py (genpref.demo.SELFPLAY_DEFAULTS) at a third of its compute."""
    data: Literal["auto", "shared", "hub", "synthetic"] = "auto"
    """rm data: auto = ../shared/data when present, else the hub when online, else built-in synthetic data."""
    max_train: int = 400
    """rm: training comparisons per model."""
    max_eval: int = 200
    """rm: evaluation comparisons."""
    epochs: int = 1
    """rm: training epochs per model."""
    max_length: int = 128
    """rm: tokens per (prompt, response) sequence."""
    selfplay_prompts: int = 16
    """selfplay: training prompts (Arena-Hard when ../shared/data is present, else built-in)."""
    k: int = 8
    """selfplay: samples per prompt."""
    max_new_tokens: int = 128
    """selfplay: tokens per sampled response."""
    eval_prompts: int = 80
    """selfplay: evaluation prompts (MT-Bench first turns when present, else built-in)."""
    seed: int = 0
    """Random seed."""


@dataclass
class DataCyclicArgs:
    """genpref data cyclic: leave-one-criterion-out cyclic datasets from multi-aspect ratings."""

    input: str
    """Rated rows: UltraFeedback schema (instruction + completions[].annotations) or prompt + responses[].ratings."""
    output_dir: str
    """Writes OUTPUT_DIR/no_<criterion>.jsonl, one dataset per left-out criterion."""
    max_cycles_per_prompt: int | None = 1
    """Strongest cycles kept per prompt and dataset (null keeps all)."""
    seed: int = 0
    """Breaks ties between equally strong cycles."""
    transitive_triples: bool = False
    """Prompts without a cycle contribute their strongest transitive triple instead."""
    cycle_length: int = 3
    """Responses per cycle (3 as in the paper; 4 or 5 also supported)."""


@dataclass
class DataCyclesArgs:
    """genpref data cycles: how intransitive a preference file is, and the best any BT model can do on it."""

    data: str
    """Pairwise comparisons, ranking rows with scores, or rated rows."""
    output: str | None = None
    """Also write the report as JSON here."""
    split: str = "train"
    """Split name for hub datasets."""
    exact_max_items: int = 16
    """Solve the BT ceiling exactly for cyclic blocks up to this size (bounds above it)."""

    def __post_init__(self) -> None:
        at_least("exact_max_items", self.exact_max_items, 1)
