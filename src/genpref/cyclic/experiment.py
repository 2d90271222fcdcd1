"""``genpref bench cyclic``: BT vs GPM vs PairPM on cyclic preference datasets (arXiv 2410.02197, Table 1).

Reproduces the paper's headline claim at CPU scale: on datasets whose comparisons form cycles
(A ≻ B by one criterion, B ≻ C by a second, C ≻ A by a third; one dataset per left-out criterion),
any scalar (BT) model is capped at 2/3 on 3-cycles while GPM can be exact.

Departures from the paper, on purpose:
* data: the paper builds its datasets from UltraFeedback's per-aspect ratings, which are not available
  offline here; by default the same builder runs on genpref's synthetic aspect-rated text
  (``genpref.cyclic.synthetic``), whose response types are recognisable from text. ``--data FILE`` runs
  on real aspect-rated rows (UltraFeedback schema) instead.
* scale: a 22.7M-parameter MiniLM encoder instead of Gemma-2B / Llama-3-8B.
* evaluation: on whole cycles held out from training (no prompt in both splits), so a model must learn
  the cyclic structure from text, not memorise comparisons; training-set accuracy is reported too.
* GPM head: unnormalised embeddings with τ = 1 (``gpm_l2_normalize``, ``gpm_tau``). With the paper
  code's L2 normalisation and τ = 0.1, a head trained from random initialisation on these datasets
  stalls with all three response types embedded in one direction (s ≈ 0), even on frozen features.
* batches of whole cycles (``group_by_prompt``, default on, for every model alike): with shuffled rows,
  each batch carries a BT-like (scalar) gradient that cancels only over whole cycles; it kept GPM k = 1
  stuck at chance in some runs.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from genpref.errors import ConfigError

log = logging.getLogger("genpref")

PAPER_TABLE1 = {"bt_range": [0.500, 0.629], "gpm": 1.0}
"""Paper Table 1 (Gemma/Llama backbones): BT RMs scored 50.0-62.9% on the four cyclic datasets, GPM 100%."""


@dataclass
class CyclicBenchArgs:
    """genpref bench cyclic: train BT, GPM and PairPM on cyclic preference datasets and compare."""

    output: str = "runs/cyclic/results.json"
    """Results JSON (with a top-level "headline"); plots and runs go next to it."""
    data: str = "synthetic"
    """synthetic (genpref's own aspect-rated text) or an aspect-rated file in UltraFeedback's schema."""
    n_prompts: int = 64
    """Synthetic prompts (each yields one cycle per dataset)."""
    cycle_length: Literal[3, 4] = 3
    """Synthetic cycle length."""
    eval_fraction: float = 0.25
    """Fraction of cycles held out for evaluation (split by prompt)."""
    models: list[str] = field(default_factory=lambda: ["bt", "gpm-k1", "gpm-k2", "pairpm"])
    """Models: bt, pairpm, gpm-kN (N blocks), gpm-kN-gate (with prompt gate)."""
    backbone: str = "minilm"
    """Backbone for every model."""
    pooling: Literal["auto", "mean", "cls", "response_mean"] = "response_mean"
    """Pooling of BT/GPM embeddings: response_mean keeps the shared prompt tokens out of the average."""
    gpm_l2_normalize: bool = False
    """L2-normalise GPM embeddings. Off by default here: from a random head, L2 + τ = 0.1 stalls in a
    local minimum on these datasets (see benchmarks/RESULTS.md); the unnormalised GPM fits them."""
    gpm_tau: float = 1.0
    """GPM temperature τ in P = σ(s/τ)."""
    finetune: Literal["full", "lora"] = "full"
    """Full fine-tuning or LoRA adapters."""
    epochs: int = 3
    """Training epochs per model."""
    batch_size: int | None = None
    """Comparisons per batch; default 3 × cycle_length (three whole cycles)."""
    group_by_prompt: bool = True
    """Batches of whole cycles (train.group_by_prompt): without it, per-batch BT-like gradient noise
    can keep a GPM stuck with every response embedded in one direction (see benchmarks/RESULTS.md)."""
    lr: float = 1e-4
    """Backbone learning rate (LoRA: multiplied by 10)."""
    head_lr: float = 1e-2
    """Head learning rate."""
    max_length: int = 64
    """Tokens per (prompt, response); PairPM gets twice this for (prompt, a, b)."""
    seed: int = 0
    """Seed for data, split and training."""
    datasets: list[str] | None = None
    """Run only these datasets (e.g. [no_honesty]); default: all four."""
    plots: bool = True
    """Write the embedding and accuracy plots (PNG)."""


def model_config(spec: str, args: CyclicBenchArgs):
    from genpref.models.config import PreferenceModelConfig

    common = dict(backbone=args.backbone, max_length=args.max_length, pooling=args.pooling)
    if spec == "bt":
        return PreferenceModelConfig(type="bt", **common)
    if spec == "pairpm":
        return PreferenceModelConfig(
            type="pairpm", backbone=args.backbone, max_length=2 * args.max_length
        )  # reads (x, a, b)
    match = re.fullmatch(r"gpm-k(\d+)(-gate)?", spec)
    if match is None:
        raise ConfigError(
            f"unknown model '{spec}'.\n  fix: use bt, pairpm, gpm-kN or gpm-kN-gate (e.g. gpm-k2)"
        )
    return PreferenceModelConfig(
        type="gpm",
        k=int(match.group(1)),
        prompt_gate=bool(match.group(2)),
        l2_normalize=args.gpm_l2_normalize,
        tau=args.gpm_tau,
        **common,
    )


def load_cyclic_datasets(args: CyclicBenchArgs) -> tuple[dict, str]:
    from genpref.cyclic.builder import build_cyclic_datasets
    from genpref.cyclic.synthetic import make_cyclic_datasets

    if args.data == "synthetic":
        # One synthetic sample per dataset (seed + its index). With 3-cycles the synthetic types form the
        # same type-level cycle whichever criterion is left out, so one shared sample would give four
        # copies of the same comparisons; independent samples make the four rows four replicates.
        first = make_cyclic_datasets(args.n_prompts, seed=args.seed, cycle_length=args.cycle_length)
        names = list(first)
        datasets = {
            name: (
                first
                if i == 0
                else make_cyclic_datasets(args.n_prompts, seed=args.seed + i, cycle_length=args.cycle_length)
            )[name]
            for i, name in enumerate(names)
        }
        return (
            datasets,
            f"genpref synthetic aspect-rated text ({args.n_prompts} prompts, {args.cycle_length}-cycles; "
            f"an independent sample per dataset, seeds {args.seed}..{args.seed + len(names) - 1})",
        )
    return build_cyclic_datasets(args.data, seed=args.seed), f"aspect-rated rows from {args.data}"


def _accuracy(final_dir: Path, examples, batch_size: int = 64) -> float:
    from genpref.eval.rm_eval import evaluate_features
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.device import default_device

    model = PreferenceModel.from_pretrained(final_dir, device=default_device())
    feats = [f for f in (model.featurize(e) for e in examples) if f is not None]
    return evaluate_features(model, feats, batch_size)["overall"]["accuracy"]


def run_cyclic_bench(args: CyclicBenchArgs) -> dict:
    """Train every model on every cyclic dataset; print and write the table, headline and plots."""
    from genpref.cyclic.graph import analyze_comparisons, comparisons_from_examples
    from genpref.cyclic.synthetic import split_by_cycle
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    start = time.perf_counter()
    out_dir = Path(args.output).parent
    datasets, source = load_cyclic_datasets(args)
    unknown = sorted(set(args.datasets or ()) - set(datasets))
    if unknown:
        raise ConfigError(
            f"--datasets names {unknown}, which the data does not have.\n  fix: choose from {list(datasets)}"
        )
    print(
        f"data: {source}; datasets: {', '.join(f'{k} ({len(v)} comparisons)' for k, v in datasets.items())}"
    )
    rows, ceilings, splits = [], {}, {}
    for name, examples in datasets.items():
        if args.datasets and name not in args.datasets:
            continue
        train, evals = split_by_cycle(examples, args.eval_fraction, seed=args.seed)
        splits[name] = evals
        report = analyze_comparisons(comparisons_from_examples(evals))
        ceilings[name] = {
            "bt_ceiling": report.bt_ceiling,
            "exact": report.bt_ceiling_exact,
            "three_cycles": report.three_cycles,
            "n_eval": len(evals),
            "n_train": len(train),
        }
        for spec in args.models:
            cfg = RMTrainConfig(
                model=model_config(spec, args),
                optim=OptimConfig(
                    lr=args.lr * (10 if args.finetune == "lora" else 1),
                    head_lr=args.head_lr,
                    warmup_ratio=0.1,
                ),
                train=TrainConfig(
                    epochs=args.epochs,
                    batch_size=args.batch_size or 3 * args.cycle_length,
                    group_by_prompt=args.group_by_prompt,
                    seed=args.seed,
                    finetune=args.finetune,
                    log_every=5,
                    progress=False,
                ),
                output_dir=str(out_dir / "runs" / name / spec),
            )
            t0 = time.perf_counter()
            result = train_preference_model_on(cfg, train, evals, overwrite=True)
            row = {
                "dataset": name,
                "model": spec,
                "eval_accuracy": result.eval_metrics["overall"]["accuracy"],
                "train_accuracy": _accuracy(result.final_dir, train),
                "seconds": round(time.perf_counter() - t0, 1),
                "checkpoint": str(result.final_dir),
            }
            rows.append(row)
            print(
                f"  {name:<26}{spec:<12} held-out acc {row['eval_accuracy']:.3f}  train acc "
                f"{row['train_accuracy']:.3f}  ({row['seconds']:.0f}s)"
            )
    minutes = (time.perf_counter() - start) / 60
    gpm = [r["eval_accuracy"] for r in rows if r["model"].startswith("gpm")]
    bt = [r["eval_accuracy"] for r in rows if r["model"] == "bt"]
    headline = {
        "gpm_min_accuracy": min(gpm) if gpm else None,
        "bt_max_accuracy": max(bt) if bt else None,
        "minutes": round(minutes, 2),
    }
    results = {
        "headline": headline,
        "data": source,
        "paper_table1": PAPER_TABLE1,
        "ceilings": ceilings,
        "rows": rows,
        "args": asdict(args),
    }
    print_table(rows, ceilings)
    print(f"headline: {json.dumps(headline)}")
    if args.plots:
        from genpref.cyclic.plots import plot_accuracy, plot_embeddings

        results["plots"] = [str(plot_accuracy(rows, ceilings, out_dir / "cyclic_accuracy.png"))]
        k1 = [r for r in rows if r["model"] == "gpm-k1"]
        if k1:
            results["plots"].append(
                str(
                    plot_embeddings(
                        Path(k1[0]["checkpoint"]), splits[k1[0]["dataset"]], out_dir / "cyclic_embeddings.png"
                    )
                )
            )
        print(f"plots: {', '.join(results['plots'])}")
    out_dir.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(f"results: {args.output}")
    return results


def print_table(rows: list[dict], ceilings: dict) -> None:
    models = list(dict.fromkeys(r["model"] for r in rows))
    print("\nheld-out accuracy on cyclic datasets (paper Table 1: BT 50.0-62.9%, GPM 100%)")
    print(f"{'dataset':<26}{'BT ceiling':>11}" + "".join(f"{m:>10}" for m in models))
    for name, c in ceilings.items():
        cells = {r["model"]: r["eval_accuracy"] for r in rows if r["dataset"] == name}
        print(
            f"{name:<26}{c['bt_ceiling']:>11.3f}"
            + "".join(f"{cells.get(m, float('nan')):>10.3f}" for m in models)
        )
