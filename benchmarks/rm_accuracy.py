"""Accuracy of BT and GPM reward models trained on real preferences, in and out of distribution.

Trains, with the same seed and optimiser, one Bradley-Terry model and seven GPMs (k = 1..4 blocks,
prompt gate off/on for k ≥ 2; arXiv 2410.02197) on ``ultrafeedback_binarized_train1000.jsonl.gz`` (full
fine-tuning of the minilm encoder, max_length 256), and evaluates each on

* ``ultrafeedback_binarized_eval200.jsonl.gz``: in distribution (disjoint prompts);
* the last --hh_eval valid rows of ``hh_rlhf_harmless_base_test.jsonl.gz``: out of distribution.
  HH-RLHF is used *only* for evaluation; no HH row is ever trained on. Invalid HH rows (empty
  responses, chosen/rejected prompts that differ) are skipped and counted.

Each setting runs in its own subprocess, so its peak RSS (``ru_maxrss``, a per-process high-water
mark) is its own. Wall times include model loading, tokenisation, training and both evaluations.
eval200 is scored by the in-memory model at the end of training; the HH accuracy by the checkpoint
reloaded from disk (``PreferenceModel.from_pretrained``), which also re-scores the first
--reload_check eval200 rows so that the JSON records whether saving and loading changed any
probability (``reload_check_max_abs_prob_diff``; it should be ~0).

The headline's GPM is the GPM setting with the best eval200 accuracy (ties: earlier in the list). Its
eval200 figure is therefore optimistically selected among seven; its HH figure is not.

    python benchmarks/rm_accuracy.py --output rm_accuracy.json
    python benchmarks/rm_accuracy.py --settings bt,gpm_k2 --max_train 200 --output quick.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    format_table,
    genpref_source,
    machine_info,
    offline_hub,
    peak_rss_mib,
    write_json,
)

SETTINGS: dict[str, dict] = {"bt": dict(type="bt")}
for _k in range(1, 5):
    for _gate in (False, True) if _k > 1 else (False,):  # a 1-block gate is identically 1
        SETTINGS[f"gpm_k{_k}" + ("_gate" if _gate else "")] = dict(type="gpm", k=_k, prompt_gate=_gate)

TRAIN_FILE = "ultrafeedback_binarized_train1000.jsonl.gz"
EVAL_FILE = "ultrafeedback_binarized_eval200.jsonl.gz"
HH_FILE = "hh_rlhf_harmless_base_test.jsonl.gz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON file for all figures.")
    p.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"Comma-separated subset of {list(SETTINGS)}."
    )
    p.add_argument("--epochs", type=int, default=1, help="Training epochs per setting.")
    p.add_argument("--max_train", type=int, default=None, help="Use at most this many training pairs.")
    p.add_argument(
        "--max_eval", type=int, default=None, help="Use at most this many eval200 rows (quick runs)."
    )
    p.add_argument("--hh_eval", type=int, default=500, help="Evaluate on the last N valid HH-RLHF rows.")
    p.add_argument("--max_length", type=int, default=256, help="Tokens per (prompt, response) sequence.")
    p.add_argument("--batch_size", type=int, default=8, help="Training pairs per optimizer step.")
    p.add_argument("--lr", type=float, default=5e-5, help="Backbone learning rate.")
    p.add_argument("--head_lr", type=float, default=1e-3, help="Head learning rate.")
    p.add_argument("--seed", type=int, default=0, help="One seed for every setting.")
    p.add_argument("--jobs", type=int, default=1, help="Settings trained at the same time (subprocesses).")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's).")
    p.add_argument(
        "--reload_check", type=int, default=32, help="eval200 rows re-scored by the reloaded model."
    )
    p.add_argument("--backbone", default="minilm", help="Backbone (built-in name or folder).")
    p.add_argument("--work_dir", default=None, help="Where runs go (default: a temporary folder).")
    p.add_argument("--keep_runs", action="store_true", help="Keep each setting's checkpoint folder.")
    p.add_argument(
        "--live_source",
        action="store_true",
        help="Workers import genpref from the working tree instead of a snapshot taken at start.",
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    p.add_argument("--worker_output", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------- worker


def load_data(args: argparse.Namespace, work_dir: Path) -> dict:
    """Training pairs, eval200 and the HH held-out split, with what was skipped."""
    from genpref.data.load import load_preferences
    from genpref.data.paths import shared_data_dir

    data_dir = shared_data_dir()
    if data_dir is None:
        raise SystemExit("no ../shared/data folder found (set GENPREF_SHARED_DATA)")
    reports = {
        name: load_preferences(data_dir / f, on_error="skip", rejects_path=work_dir / f"rejects_{name}.jsonl")
        for name, f in (("train", TRAIN_FILE), ("eval200", EVAL_FILE), ("hh", HH_FILE))
    }
    train = list(reports["train"].examples)[: args.max_train]
    hh_all = list(reports["hh"].examples)
    hh = hh_all[-args.hh_eval :]
    return {
        "train": train,
        "eval200": list(reports["eval200"].examples)[: args.max_eval],
        "hh": hh,
        "summary": {
            name: {
                "file": r.source,
                "rows_read": r.n_read,
                "rows_kept": len(r.examples),
                "rows_skipped": len(r.rejected),
                "skipped": [f"{origin}: {reason}" for origin, reason in r.rejected],
            }
            for name, r in reports.items()
        }
        | {
            "train_used": len(train),
            "hh_split": (
                f"last {len(hh)} of {len(hh_all)} valid rows "
                f"({hh[0].origin} .. {hh[-1].origin}); evaluation only"
            ),
        },
    }


def run_worker(args: argparse.Namespace) -> None:
    """Train and evaluate one setting; write its figures to --worker_output."""
    import torch

    from genpref.eval.rm_eval import evaluate_features
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format=f"[{args.worker}] %(message)s")
    name = args.worker
    run_dir = Path(args.work_dir) / name
    start = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    data = load_data(args, Path(args.work_dir))
    cfg = RMTrainConfig(
        model=PreferenceModelConfig(backbone=args.backbone, max_length=args.max_length, **SETTINGS[name]),
        optim=OptimConfig(lr=args.lr, head_lr=args.head_lr, warmup_ratio=0.1),
        train=TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, log_every=10, progress=False
        ),
        eval_batch_size=32,
        output_dir=str(run_dir),
    )
    t_train = time.perf_counter()
    result = train_preference_model_on(cfg, data["train"], data["eval200"], overwrite=True)
    train_seconds = time.perf_counter() - t_train  # tokenisation + training + eval200 scoring

    t_eval = time.perf_counter()
    model = PreferenceModel.from_pretrained(result.final_dir)
    metrics = {}
    data["eval200_head"] = data["eval200"][: args.reload_check]
    for split in ("hh", "eval200_head"):
        feats = [model.featurize(ex) for ex in data[split]]
        kept = [f for f in feats if f is not None]
        metrics[split] = evaluate_features(model, kept, batch_size=32)
        metrics[split]["dropped_by_truncation"] = len(feats) - len(kept)
    eval_seconds = time.perf_counter() - t_eval

    in_memory = result.eval_metrics["overall"]
    n_check = len(metrics["eval200_head"]["prob_chosen"])
    prob_gap = float(
        torch.tensor(result.eval_metrics["prob_chosen"][:n_check])
        .sub(torch.tensor(metrics["eval200_head"]["prob_chosen"]))
        .abs()
        .max()
    )
    log_rows = [
        json.loads(line) for line in Path(result.metrics_path).read_text().splitlines() if line.strip()
    ]
    train_rows = [r for r in log_rows if "loss" in r]
    out = {
        "setting": name,
        "model_config": SETTINGS[name],
        "steps": result.steps,
        "eval200": {k: v for k, v in in_memory.items()},
        "eval200_prob_chosen": result.eval_metrics["prob_chosen"],
        "reload_check_rows": n_check,
        "reload_check_max_abs_prob_diff": prob_gap,
        "hh": metrics["hh"]["overall"],
        "hh_prob_chosen": metrics["hh"]["prob_chosen"],
        "hh_dropped_by_truncation": metrics["hh"]["dropped_by_truncation"],
        "final_train_loss_window": train_rows[-1]["loss"] if train_rows else None,
        "final_train_accuracy_window": train_rows[-1]["accuracy"] if train_rows else None,
        "train_curve": [{k: r[k] for k in ("step", "loss", "accuracy")} for r in train_rows],
        "train_seconds": train_seconds,
        "hh_and_reload_eval_seconds": eval_seconds,
        "torch_threads": torch.get_num_threads(),
        "worker_seconds": time.perf_counter() - start,
        "cpu_seconds": _cpu_seconds(),
        "loadavg_1min_start_end": [load_at_start, os.getloadavg()[0]],
        "peak_rss_mib": peak_rss_mib(),
        "genpref_source": genpref_source(),
        "data": data["summary"],
    }
    Path(args.worker_output).write_text(json.dumps(out))
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads): robust to a busy machine."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------- parent


def wilson(acc: float, n: int) -> list[float]:
    from genpref.eval.stats import wilson_interval

    return list(wilson_interval(acc * n, n))


def mcnemar_exact(prob_a: list[float], prob_b: list[float]) -> dict:
    """Exact two-sided McNemar test on per-row correctness (chosen wins iff P > 0.5; ties wrong)."""
    a_only = sum(pa > 0.5 and not pb > 0.5 for pa, pb in zip(prob_a, prob_b))
    b_only = sum(pb > 0.5 and not pa > 0.5 for pa, pb in zip(prob_a, prob_b))
    n = a_only + b_only
    tail = sum(math.comb(n, i) for i in range(0, min(a_only, b_only) + 1)) / 2**n if n else 1.0
    return {"only_first_correct": a_only, "only_second_correct": b_only, "p_value": min(1.0, 2 * tail)}


def snapshot_library(work_dir: Path) -> Path:
    """Copy the genpref package into ``work_dir`` so every worker runs the same code.

    The working tree may be edited while the benchmark runs (an hour or more); without a snapshot
    the settings could be trained by different versions of the library. Returns the folder to put
    first on the workers' PYTHONPATH.
    """
    import importlib.util

    spec = importlib.util.find_spec("genpref")
    if spec is None or spec.origin is None:
        raise SystemExit("genpref is not importable; install it with pip install -e .")
    dest = work_dir / "genpref_snapshot"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(Path(spec.origin).parent, dest / "genpref", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run_parent(args: argparse.Namespace, argv: list[str] | None) -> dict:
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; choose from {list(SETTINGS)}")
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="genpref_rm_acc_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.live_source:
        snapshot = snapshot_library(work_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snapshot), env.get("PYTHONPATH")]))
    passthrough = [
        f"--epochs={args.epochs}",
        f"--hh_eval={args.hh_eval}",
        f"--max_length={args.max_length}",
        f"--batch_size={args.batch_size}",
        f"--lr={args.lr}",
        f"--head_lr={args.head_lr}",
        f"--seed={args.seed}",
        f"--backbone={args.backbone}",
        f"--reload_check={args.reload_check}",
        *([f"--threads={args.threads}"] if args.threads is not None else []),
        f"--work_dir={work_dir}",
        *([f"--max_train={args.max_train}"] if args.max_train is not None else []),
        *([f"--max_eval={args.max_eval}"] if args.max_eval is not None else []),
        *(["--keep_runs"] if args.keep_runs else []),
    ]
    command = "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    result: dict = {
        "benchmark": "rm_accuracy",
        "headline": {},
        "settings": {
            "command": command,
            "backbone": args.backbone,
            "finetune": "full",
            "epochs": args.epochs,
            "max_train": args.max_train,
            "max_eval": args.max_eval,
            "max_length": args.max_length,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "head_lr": args.head_lr,
            "warmup_ratio": 0.1,
            "scheduler": "cosine",
            "seed": args.seed,
            "torch_threads_per_worker": args.threads,
            "concurrent_jobs": args.jobs,
            "library": "working tree (live)" if args.live_source else "snapshot of genpref taken at start",
            "settings": {s: SETTINGS[s] for s in settings},
            "train_data": TRAIN_FILE,
            "eval_in_distribution": EVAL_FILE,
            "eval_out_of_distribution": f"{HH_FILE} (last {args.hh_eval} valid rows; never trained on)",
        },
        "machine": machine_info(),
        "rows": [],
        "failed": {},
    }

    running: dict[str, subprocess.Popen] = {}
    stopping: list[int] = []

    def stop_workers(signum, frame) -> None:  # SIGTERM: stop the workers too, and start no more
        stopping.append(signum)
        for proc in list(running.values()):
            proc.terminate()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop_workers)

    def run_one(name: str) -> tuple[str, int, float]:
        if stopping:
            return name, -stopping[0], 0.0
        out_file = work_dir / f"{name}.json"
        print(f"=== {name}: started {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        command = [sys.executable, __file__, "--output", os.devnull, f"--worker={name}"]
        running[name] = subprocess.Popen([*command, f"--worker_output={out_file}", *passthrough], env=env)
        status = running[name].wait()
        running.pop(name)
        return name, status, time.perf_counter() - start

    bench_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in as_completed([pool.submit(run_one, name) for name in settings]):
            name, status, seconds = future.result()
            out_file = work_dir / f"{name}.json"
            if status != 0 or not out_file.exists():
                result["failed"][name] = f"worker exited with status {status}"
                continue
            row = json.loads(out_file.read_text())
            row["wall_seconds"] = seconds
            result.setdefault("data", row.pop("data"))
            row.pop("data", None)
            result["rows"].append(row)
            result["rows"].sort(key=lambda r: settings.index(r["setting"]))
            e, h = row["eval200"], row["hh"]
            print(
                f"=== {name}: eval200 {e['accuracy']:.4f}  hh {h['accuracy']:.4f}  {seconds:.0f} s wall, "
                f"{row['cpu_seconds']:.0f} s CPU, {row['peak_rss_mib']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            summarise(result)
            result["benchmark_seconds"] = time.perf_counter() - bench_start
            write_json(args.output, result)  # partial results survive an interruption
    result["benchmark_seconds"] = time.perf_counter() - bench_start
    summarise(result)
    write_json(args.output, result)
    if not args.work_dir and not args.keep_runs:
        shutil.rmtree(work_dir, ignore_errors=True)
    print_table(result)
    print(f"wrote {args.output}")
    return result


def summarise(result: dict) -> None:
    """Intervals per row; headline, best GPM and paired tests from the rows so far."""
    for row in result["rows"]:
        row["eval200_accuracy_ci95"] = wilson(row["eval200"]["accuracy"], row["eval200"]["n"])
        row["hh_accuracy_ci95"] = wilson(row["hh"]["accuracy"], row["hh"]["n"])
    sources = {r["genpref_source"]["sha256"] for r in result["rows"]}
    result["all_settings_same_genpref_source"] = len(sources) <= 1
    rows = {r["setting"]: r for r in result["rows"]}
    gpms = [r for r in result["rows"] if r["setting"].startswith("gpm")]
    best = max(gpms, key=lambda r: r["eval200"]["accuracy"], default=None)  # first of equals wins
    bt = rows.get("bt")
    headline = {}
    if bt is not None:
        headline["bt_accuracy_eval200"] = bt["eval200"]["accuracy"]
    if best is not None:
        headline["gpm_accuracy_eval200"] = best["eval200"]["accuracy"]
    if bt is not None:
        headline["bt_accuracy_hh"] = bt["hh"]["accuracy"]
    if best is not None:
        headline["gpm_accuracy_hh"] = best["hh"]["accuracy"]
        headline["best_gpm_setting"] = best["setting"]
        result["best_gpm_setting"] = best["setting"]
    result["headline"] = headline
    if bt is not None and best is not None:
        result["bt_vs_best_gpm_mcnemar"] = {
            split: mcnemar_exact(bt[f"{split}_prob_chosen"], best[f"{split}_prob_chosen"])
            for split in ("eval200", "hh")
        }
    if gpms:
        result["best_gpm_on_hh_for_reference"] = max(gpms, key=lambda r: r["hh"]["accuracy"])["setting"]


def print_table(result: dict) -> None:
    rows = [
        {
            "setting": r["setting"],
            "eval200": r["eval200"]["accuracy"],
            "eval200_ll": r["eval200"]["log_loss"],
            "hh": r["hh"]["accuracy"],
            "hh_ll": r["hh"]["log_loss"],
            "seconds": r["wall_seconds"],
            "cpu": r["cpu_seconds"],
            "rss": r["peak_rss_mib"],
        }
        for r in result["rows"]
    ]
    print(
        format_table(
            rows,
            [
                ("setting", "setting", ""),
                ("eval200", "eval200 acc", ".4f"),
                ("eval200_ll", "log-loss", ".3f"),
                ("hh", "HH acc (OOD)", ".4f"),
                ("hh_ll", "log-loss", ".3f"),
                ("seconds", "wall s", ".0f"),
                ("cpu", "CPU s", ".0f"),
                ("rss", "peak RSS MiB", ".0f"),
            ],
        )
    )
    print(f"headline: {result['headline']}")
    if result["failed"]:
        print(f"FAILED: {result['failed']}")


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    offline_hub()
    if args.worker is not None:
        run_worker(args)
        return None
    return run_parent(args, argv)


if __name__ == "__main__":
    main()
