"""Arguments and entry points of the CLI subcommands (each is also a plain Python function)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genpref.errors import ConfigError

log = logging.getLogger("genpref")


@dataclass
class EvalArgs:
    """genpref rm eval: accuracy, mean P(chosen), log-loss, calibration and per-subset tables."""

    model: str
    """Checkpoint folder written by genpref rm train (e.g. runs/rm/final)."""
    data: str
    """Comparisons to evaluate: JSONL/JSON/Parquet/CSV file or hub dataset name."""
    output: str | None = None
    """Write the results as JSON here."""
    split: str = "test"
    """Split name for hub datasets."""
    batch_size: int = 32
    """Comparisons per forward batch."""
    on_error: Literal["raise", "skip"] = "raise"
    """Bad rows: raise, or skip into the rejects file."""
    rejects: str | None = None
    """Rejects file for on_error=skip (default: next to output, or rejects.jsonl)."""
    limit: int | None = None
    """Evaluate at most this many rows."""


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


@dataclass
class DemoArgs:
    """genpref demo: train and compare BT and GPM on the built-in minilm backbone."""

    output_dir: str = "runs/demo"
    """Where runs, tables and plots go."""
    data: Literal["auto", "shared", "hub", "synthetic"] = "auto"
    """auto: ../shared/data when present, else the hub when online, else built-in synthetic data."""
    max_train: int = 400
    """Training comparisons used per model."""
    max_eval: int = 200
    """Evaluation comparisons."""
    epochs: int = 1
    """Training epochs per model."""
    max_length: int = 128
    """Tokens per (prompt, response) sequence."""
    seed: int = 0
    """Random seed."""


def evaluate_file(args: EvalArgs) -> dict:
    """Evaluate a checkpoint on a data file; optionally write JSON. Returns the results dict."""
    from genpref.data.load import load_preferences
    from genpref.eval.rm_eval import evaluate_features
    from genpref.models.preference_model import PreferenceModel

    model = PreferenceModel.from_pretrained(args.model)
    rejects = args.rejects or (
        str(Path(args.output).with_suffix(".rejects.jsonl")) if args.output else "rejects.jsonl"
    )
    report = load_preferences(
        args.data, split=args.split, on_error=args.on_error, rejects_path=rejects, limit=args.limit
    )
    log.info(report.summary())
    feats = [model.featurize(ex) for ex in report.examples]
    kept = [f for f in feats if f is not None]
    if len(kept) < len(feats):
        log.info(f"{len(feats) - len(kept)} rows dropped by truncation policy 'drop'")
    results = evaluate_features(model, kept, args.batch_size)
    results["model"], results["data"] = str(args.model), str(args.data)
    overall = results["overall"]
    print(f"{'subset':<28}{'n':>6}{'accuracy':>10}{'P(chosen)':>11}{'log-loss':>10}{'ECE':>8}")
    for name, m in [("all", overall), *results["subsets"].items()]:
        print(
            f"{name:<28}{m['n']:>6}{m['accuracy']:>10.4f}{m['mean_prob_chosen']:>11.4f}{m['log_loss']:>10.4f}{m['ece']:>8.4f}"
        )
    for section, value in results.get("rewardbench", {}).items():
        print(f"RewardBench {section}: {value:.4f}")
    if "pairpm_consistency" in results:
        c = results["pairpm_consistency"]
        print(
            f"PairPM order consistency: mean |P(a≻b)+P(b≻a)-1| = {c['mean_abs_deviation']:.4f}, "
            f"max {c['max_abs_deviation']:.4f}, winner flips with order in {c['order_disagreement']:.2%} of rows"
        )
    if args.output:
        from genpref.train.checkpoint import atomic_write_text

        atomic_write_text(Path(args.output), json.dumps(results, indent=2))
        print(f"wrote {args.output}")
    return results


def score_file(args: ScoreArgs) -> list[dict]:
    """Score comparison rows or rank multi-response rows; writes JSONL rows."""
    from genpref.data.load import load_preferences, load_rankings
    from genpref.data.readers import read_records
    from genpref.models.preference_model import PreferenceModel

    model = PreferenceModel.from_pretrained(args.model)
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
    elif key == ("rm", "score"):
        score_file(config)
    elif key == ("demo",):
        from genpref.demo import run_demo

        run_demo(config)
    else:  # pragma: no cover - the parser only produces the keys above
        raise ConfigError(f"unknown command {key}")
