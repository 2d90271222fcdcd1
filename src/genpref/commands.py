"""Arguments and entry points of the CLI subcommands (each is also a plain Python function)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genpref.data.rankings import RankingPairConfig
from genpref.errors import ConfigError, DataError
from genpref.validate import at_least

log = logging.getLogger("genpref")


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

    model: str
    """Checkpoint folder written by genpref rm train (e.g. runs/rm/final)."""


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
    GPM is the self-play judge); selfplay: one GPO iteration of SmolLM2-135M judged by that GPM."""
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
    selfplay_prompts: int = 32
    """selfplay: training prompts (Arena-Hard when ../shared/data is present, else built-in)."""
    k: int = 4
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


def build_cyclic_files(args: DataCyclicArgs):
    from genpref.cyclic.builder import build_cyclic, write_datasets

    report = build_cyclic(
        args.input,
        max_cycles_per_prompt=args.max_cycles_per_prompt,
        seed=args.seed,
        transitive_triples=args.transitive_triples,
        cycle_length=args.cycle_length,
    )
    print(report.summary())
    for name, path in write_datasets(report.datasets, args.output_dir).items():
        print(f"wrote {path} ({len(report.datasets[name])} comparisons)")
    return report


def cycle_report_file(args: DataCyclesArgs):
    from genpref.cyclic.builder import comparisons_from_file
    from genpref.cyclic.graph import analyze_comparisons

    comparisons = comparisons_from_file(args.data, split=args.split)
    if not comparisons:
        raise DataError(
            "no comparisons (the file is empty, or no row has two responses with different scores)",
            source=str(args.data),
            fix="pass a file of pairwise rows, scored ranking rows or rated rows (see the README's Data section)",
        )
    report = analyze_comparisons(comparisons, exact_max_items=args.exact_max_items)
    print(report.summary())
    if args.output:
        from genpref.train.checkpoint import atomic_write_text

        atomic_write_text(Path(args.output), json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.output}")
    return report


def _eval_rows(args: EvalArgs):
    from genpref.eval.judge_eval import load_eval_rows

    rejects = args.rejects or (
        str(Path(args.output).with_suffix(".rejects.jsonl")) if args.output else "rejects.jsonl"
    )
    data = load_eval_rows(
        args.data,
        split=args.split,
        on_error=args.on_error,
        rejects_path=rejects,
        limit=args.limit,
        ranking=args.ranking,
    )
    log.info(f"{data.report.summary()} ({data.layout})")
    if not data.rows:
        report = data.report
        why = f"all {report.n_read} rows were rejected (reasons in {rejects})" if report.rejected else ""
        raise DataError(
            f"nothing to evaluate: {why or 'the data has no rows'}",
            source=str(args.data),
            fix="check that the file holds prompt/chosen/rejected rows, ranking rows or best-of-N rows (the "
            "rejects file gives each row's reason)",
        )
    return data


def _judge(model_dir: str, data, args: EvalArgs) -> dict:
    from genpref.eval.judge_eval import judge_rows
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.device import default_device

    model = PreferenceModel.from_pretrained(model_dir, device=default_device())
    kwargs = {}
    if data.layout == "rankings":
        kwargs = dict(
            pair_config=args.ranking,
            best_of=args.best_of,
            best_of_min_gap=args.best_of_min_gap,
            seed=args.seed,
        )
    results = judge_rows(model, data, args.batch_size, **kwargs)
    results["model"], results["data"] = str(model_dir), str(args.data)
    return results


def _write_json(path: str | None, results: dict) -> None:
    if path:
        from genpref.train.checkpoint import atomic_write_text

        atomic_write_text(Path(path), json.dumps(results, indent=2))
        print(f"wrote {path}")


def evaluate_file(args: EvalArgs) -> dict:
    """Evaluate a checkpoint on a data file (pairs, rankings or best-of-N rows); optionally write JSON."""
    from genpref.eval.judge_report import format_eval

    results = _judge(args.model, _eval_rows(args), args)
    print(format_eval(results))
    _write_json(args.output, results)
    return results


def compare_files(args: CompareArgs) -> dict:
    """Evaluate two checkpoints on the same rows and test the difference; optionally write JSON."""
    from genpref.eval.judge_eval import compare_results
    from genpref.eval.judge_report import format_compare, format_eval

    data = _eval_rows(args)
    results = {name: _judge(path, data, args) for name, path in (("a", args.model_a), ("b", args.model_b))}
    for name, path in (("A", args.model_a), ("B", args.model_b)):
        print(f"--- {name}: {path}\n{format_eval(results[name.lower()])}")
    results["comparison"] = compare_results(results["a"], results["b"], n_boot=args.n_boot, seed=args.seed)
    print(format_compare(results["comparison"], args.model_a, args.model_b))
    _write_json(args.output, results)
    return results


def score_file(args: ScoreArgs) -> list[dict]:
    """Score comparison rows or rank multi-response rows; writes JSONL rows."""
    from genpref.data.load import load_preferences, load_rankings
    from genpref.data.readers import read_records
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.device import default_device

    model = PreferenceModel.from_pretrained(args.model, device=default_device())
    first = next(iter(read_records(args.data, split=args.split)), None)
    if first is None:
        raise ConfigError(f"{args.data} has no rows")
    out = []
    if "responses" in first[2]:
        report = load_rankings(args.data, split=args.split, limit=args.limit)
        from tqdm.auto import tqdm

        for ex in tqdm(report.examples, desc="rank"):
            r = model.rank(ex.prompt, list(ex.responses), batch_size=args.batch_size)
            out.append(
                {
                    "origin": ex.origin,
                    "prob_matrix": r.prob_matrix.tolist(),
                    "score_vs_mixture": r.score_vs_mixture.tolist(),
                    "prob_vs_mixture": r.prob_vs_mixture.tolist(),
                    "ranking": r.score_vs_mixture.argsort(descending=True).tolist(),
                    "forwards": r.forwards,
                }
            )
    else:
        report = load_preferences(args.data, split=args.split, limit=args.limit)
        exs = report.examples
        if not exs:
            raise DataError(
                "no rows to score", source=str(args.data), fix="pass a file with at least one row"
            )
        score = model.score(
            [e.prompt for e in exs],
            [e.chosen for e in exs],
            [e.rejected for e in exs],
            batch_size=args.batch_size,
            progress=True,
        )
        prob = (score / model.config.temperature).sigmoid()
        out = [
            {"origin": e.origin, "score": s, "prob_chosen": p}
            for e, s, p in zip(exs, score.tolist(), prob.tolist())
        ]
    text = "".join(json.dumps(row) + "\n" for row in out)
    if args.output:
        from genpref.train.checkpoint import atomic_write_text

        atomic_write_text(Path(args.output), text)
        log.info(f"wrote {len(out)} rows to {args.output}")
    else:
        print(text, end="")
    return out


def run(key: tuple[str, ...], config) -> None:
    if key == ("rm", "train"):
        from genpref.train.rm import train_preference_model

        result = train_preference_model(config)
        print(f"final model: {result.final_dir}")
        if result.eval_metrics:
            o = result.eval_metrics["overall"]
            print(
                f"eval accuracy {o['accuracy']:.4f}  mean P(chosen) {o['mean_prob_chosen']:.4f}  log-loss {o['log_loss']:.4f}"
            )
    elif key == ("rm", "eval"):
        evaluate_file(config)
    elif key == ("rm", "compare"):
        compare_files(config)
    elif key == ("rm", "score"):
        score_file(config)
    elif key == ("po", "train"):
        from genpref.train.po import train_policy

        result = train_policy(config)
        print(f"final policy: {result.final_dir}")
        if result.eval_metrics:
            print("eval: " + "  ".join(f"{k} {v:.4f}" for k, v in result.eval_metrics.items()))
    elif key == ("sft",):
        from genpref.train.sft import train_sft

        result = train_sft(config)
        print(f"final policy: {result.final_dir}")
    elif key == ("selfplay",):
        from genpref.selfplay.run import run_selfplay

        run_selfplay(config)
    elif key == ("bench", "cyclic"):
        from genpref.cyclic.experiment import run_cyclic_bench

        run_cyclic_bench(config)
    elif key == ("bench", "nash"):
        from genpref.selfplay.nash import run_nash_bench

        run_nash_bench(config)
    elif key == ("data", "cyclic"):
        build_cyclic_files(config)
    elif key == ("data", "cycles"):
        cycle_report_file(config)
    elif key == ("rm", "export"):
        from genpref.models.export import export_checkpoint

        print(f"wrote {export_checkpoint(config.model, config.output, config.format)}")
    elif key == ("serve",):
        try:
            from genpref.serve.app import serve
        except ImportError as exc:
            raise ConfigError(
                f"genpref serve needs fastapi and uvicorn ({exc}).\n  fix: pip install 'genpref[serve]'"
            ) from exc
        serve(config)
    elif key == ("demo",):
        from genpref.demo import run_demo

        run_demo(config)
    else:  # pragma: no cover - the parser only produces the keys above
        raise ConfigError(f"unknown command {key}")
