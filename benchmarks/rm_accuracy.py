"""The judge benchmark: BT vs GPM on each backbone at equal compute, in and out of distribution.

Every setting (backbone × judge type) trains the same number of optimizer steps on the same pairs with
the same batch size, max_length, schedule and seed (equal compute per backbone), on

* ``ultrafeedback_binarized_train1000``: the UltraFeedback pairs (bad rows skipped and counted), plus
* the training prompts of ``arena_bench_v1_scored``: the 300 prompts are split by prompt
  (``--arena_eval_fraction`` held out, seed ``--seed``); training pairs are every pair of answers whose
  GPT-4 grades differ by at least ``--arena_min_gap`` (ties never paired), at most
  ``--arena_pairs_per_prompt`` per prompt (largest gaps first); empty answers are dropped.

and is evaluated on

* ``eval200``: UltraFeedback, disjoint prompts (in distribution);
* ``arena``: the held-out arena prompts, as pairs (same gap rule) and as RewardBench-2-style best-of-4
  sets (a top-graded answer vs three graded at least ``--arena_min_gap`` lower; chance 25 %), plus
  Kendall τ_b / Spearman ρ / top-1 against the grades;
* ``hh``: the last ``--hh_eval`` valid HH-RLHF harmless-base pairs (out of distribution, never trained on).

Each accuracy has a 95 % Wilson interval and sits beside the "longer response wins" baseline on the same
rows and a length-bias table (``genpref.eval.judge_eval``). Each setting runs in its own subprocess (its
own peak RSS) on a snapshot of the library taken at start.

Headline: ``best_judge`` (highest mean of eval200 and arena pair accuracy; selected in-sample, so its
figures are optimistic), its accuracies, the length baselines, ``gpm_minus_bt_pooled``: GPM − BT
accuracy on the eval200 + arena pairs of every backbone with both types, pooled row by row, with the
lower end of a paired-bootstrap 95 % interval, and ``train_minutes`` of the best judge.

    python benchmarks/rm_accuracy.py --output judges.json                       # full run (hours)
    python benchmarks/rm_accuracy.py --quick --output smoke.json                # smoke test (minutes)
"""

from __future__ import annotations

import argparse
import json
import logging
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

BACKBONES: dict[str, dict] = {
    "minilm": dict(backbone="minilm", finetune="full"),
    "smollm2": dict(backbone="smollm2-135m", finetune="full"),
    "smollm2_lora": dict(backbone="smollm2-135m", finetune="lora"),
    "minilm_frozen": dict(backbone="minilm", finetune="frozen"),  # linear probe on cached features
}
JUDGES: dict[str, dict] = {"bt": dict(type="bt"), "gpm": dict(type="gpm", k=2)}
SETTINGS = {f"{b}_{j}": (b, j) for b in BACKBONES for j in JUDGES}

TRAIN_FILE = "ultrafeedback_binarized_train1000.jsonl.gz"
EVAL_FILE = "ultrafeedback_binarized_eval200.jsonl.gz"
ARENA_FILE = "arena_bench_v1_scored.jsonl.gz"
HH_FILE = "hh_rlhf_harmless_base_test.jsonl.gz"
QUICK = dict(
    settings="minilm_bt,minilm_gpm",
    steps=3,
    batch_size=4,
    max_length=64,
    max_eval=16,
    hh_eval=16,
    arena_eval_prompts=3,
    arena_pairs_per_prompt=2,
)
"""--quick: a smoke test of the whole pipeline in minutes (its numbers mean nothing)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON file for all figures.")
    p.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"Comma-separated subset of {list(SETTINGS)}."
    )
    p.add_argument("--quick", action="store_true", help=f"Smoke test: {QUICK} (explicit flags still win).")
    p.add_argument("--steps", type=int, default=250, help="Optimizer steps per setting (equal compute).")
    p.add_argument("--batch_size", type=int, default=8, help="Training pairs per optimizer step.")
    p.add_argument("--max_length", type=int, default=384, help="Tokens per (prompt, response) sequence.")
    p.add_argument("--lr", type=float, default=5e-5, help="Backbone learning rate (full fine-tuning).")
    p.add_argument("--lora_lr", type=float, default=5e-4, help="Learning rate of LoRA adapters.")
    p.add_argument("--head_lr", type=float, default=1e-3, help="Head learning rate.")
    p.add_argument("--gpm_tau", type=float, default=1.0, help="GPM temperature τ (paper code: 0.1).")
    p.add_argument("--gpm_l2", action="store_true", help="L2-normalise GPM embeddings (off by default).")
    p.add_argument(
        "--bt_center_rewards",
        type=float,
        default=0.0,
        help="BT reward-centring coefficient (RMTrainConfig.center_rewards_coefficient; 0: off).",
    )
    p.add_argument("--arena_eval_fraction", type=float, default=0.3, help="Arena prompts held out.")
    p.add_argument("--arena_min_gap", type=float, default=3.0, help="Arena grade gap for a pair / best-of-4.")
    p.add_argument("--arena_pairs_per_prompt", type=int, default=8, help="Arena training pairs per prompt.")
    p.add_argument(
        "--arena_margin_per_score",
        type=float,
        default=0.0,
        help="Margin (logits) per grade point of an arena training pair, for the hard loss (0: none).",
    )
    p.add_argument(
        "--arena_eval_prompts", type=int, default=None, help="Use at most this many held-out arena prompts."
    )
    p.add_argument("--max_eval", type=int, default=None, help="Use at most this many eval200 rows.")
    p.add_argument("--hh_eval", type=int, default=500, help="Evaluate on the last N valid HH-RLHF rows.")
    p.add_argument("--seed", type=int, default=0, help="One seed for every setting and the arena split.")
    p.add_argument("--jobs", type=int, default=1, help="Settings trained at the same time (subprocesses).")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's).")
    p.add_argument("--work_dir", default=None, help="Where runs go (default: a temporary folder).")
    p.add_argument("--keep_runs", action="store_true", help="Keep each setting's checkpoint folder.")
    p.add_argument("--live_source", action="store_true", help="Workers import genpref from the working tree.")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="Read a setting's row from WORK_DIR/NAME.json when an earlier run with the same settings left "
        "it, instead of training it again (an interrupted benchmark goes on; one more setting joins).",
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    p.add_argument("--worker_output", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0].lstrip("-") for a in (argv if argv is not None else sys.argv[1:])}
        for key, value in QUICK.items():
            if key not in given:
                setattr(args, key, value)
    return args


# ---------------------------------------------------------------------------------------- worker


def load_data(args: argparse.Namespace, work_dir: Path) -> dict:
    """Training pairs (UltraFeedback + arena training prompts) and the three evaluation sets."""
    from genpref.data.load import load_preferences, load_rankings
    from genpref.data.paths import shared_data_dir
    from genpref.data.rankings import RankingPairConfig, pairs_from_rankings, split_by_prompt

    data_dir = shared_data_dir()
    if data_dir is None:
        raise SystemExit("no ../shared/data folder found (set GENPREF_SHARED_DATA)")
    reports = {
        name: load_preferences(data_dir / f, on_error="skip", rejects_path=work_dir / f"rejects_{name}.jsonl")
        for name, f in (("train", TRAIN_FILE), ("eval200", EVAL_FILE), ("hh", HH_FILE))
    }
    arena = load_rankings(data_dir / ARENA_FILE, drop_empty_responses=True)
    arena_train, arena_eval = split_by_prompt(arena.examples, args.arena_eval_fraction, seed=args.seed)
    pair_rule = RankingPairConfig(
        min_score_gap=args.arena_min_gap,
        max_pairs_per_prompt=args.arena_pairs_per_prompt,
        margin_per_score=args.arena_margin_per_score,
    )
    arena_pairs = pairs_from_rankings(arena_train, pair_rule)
    uf = list(reports["train"].examples)
    hh_all = list(reports["hh"].examples)
    return {
        "train": uf + arena_pairs,
        "eval200": list(reports["eval200"].examples)[: args.max_eval],
        "arena": arena_eval[: args.arena_eval_prompts],
        "hh": hh_all[-args.hh_eval :],
        "summary": {
            name: {
                "file": r.source,
                "rows_read": r.n_read,
                "rows_kept": len(r.examples),
                "rows_skipped": len(r.rejected),
            }
            for name, r in reports.items()
        }
        | {
            "train_pairs": {"ultrafeedback": len(uf), "arena": len(arena_pairs)},
            "arena_prompts": {"train": len(arena_train), "eval": len(arena_eval[: args.arena_eval_prompts])},
            "arena_pair_rule": f"grade gap >= {args.arena_min_gap}, ties never paired, <= {args.arena_pairs_per_prompt} per prompt"
            + (
                f", margin {args.arena_margin_per_score} per grade point"
                if args.arena_margin_per_score
                else ""
            ),
            "hh_split": f"last {min(args.hh_eval, len(hh_all))} of {len(hh_all)} valid rows; evaluation only",
        },
    }


def _drop_lists(section: dict, keep_correct: bool = True) -> dict:
    """A result section without its per-row probabilities (``correct`` kept for the paired tests)."""
    out = {k: v for k, v in section.items() if k != "prob_chosen" and (keep_correct or k != "correct")}
    if "best_of_n" in out:
        out["best_of_n"] = _drop_lists(out["best_of_n"], keep_correct)
    return out


def run_worker(args: argparse.Namespace) -> None:
    """Train and evaluate one setting; write its figures to --worker_output."""
    import torch

    from genpref.data.rankings import RankingPairConfig
    from genpref.eval.judge_eval import judge_pairs, judge_rankings
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.lora import LoraSettings
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format=f"[{args.worker}] %(message)s")
    backbone, judge = SETTINGS[args.worker]
    run_dir = Path(args.work_dir) / args.worker
    start = time.perf_counter()
    data = load_data(args, Path(args.work_dir))
    model_kw = dict(JUDGES[judge])
    if judge == "gpm":
        model_kw |= dict(tau=args.gpm_tau, l2_normalize=args.gpm_l2)
    finetune = BACKBONES[backbone]["finetune"]
    cfg = RMTrainConfig(
        model=PreferenceModelConfig(
            backbone=BACKBONES[backbone]["backbone"], max_length=args.max_length, **model_kw
        ),
        optim=OptimConfig(
            lr=args.lora_lr if finetune == "lora" else args.lr, head_lr=args.head_lr, warmup_ratio=0.1
        ),
        train=TrainConfig(
            epochs=100,
            max_steps=args.steps,
            batch_size=args.batch_size,
            finetune=finetune,
            lora=LoraSettings(dropout=0.0) if finetune == "lora" else LoraSettings(),
            seed=args.seed,
            log_every=10,
            progress=False,
        ),
        center_rewards_coefficient=args.bt_center_rewards if judge == "bt" else 0.0,
        output_dir=str(run_dir),
    )
    t_train = time.perf_counter()
    result = train_preference_model_on(cfg, data["train"], None, overwrite=True)
    train_seconds = time.perf_counter() - t_train
    t_eval = time.perf_counter()
    model = PreferenceModel.from_pretrained(result.final_dir)
    arena_rule = RankingPairConfig(min_score_gap=args.arena_min_gap)
    evals = {
        "eval200": judge_pairs(model, data["eval200"]),
        "arena": judge_rankings(
            model,
            data["arena"],
            arena_rule,
            best_of=4,
            best_of_min_gap=args.arena_min_gap,
            seed=args.seed,
            progress=False,
        ),
        "hh": judge_pairs(model, data["hh"]),
    }
    out = {
        "setting": args.worker,
        "backbone": backbone,
        "judge": judge,
        "model_config": model_kw | BACKBONES[backbone],
        "steps": result.steps,
        "train_pairs_seen": result.steps * args.batch_size,
        **{name: _drop_lists(section) for name, section in evals.items()},
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - t_eval,
        "worker_seconds": time.perf_counter() - start,
        "cpu_seconds": _cpu_seconds(),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": peak_rss_mib(),
        "genpref_source": genpref_source(),
        "run_settings": comparable_settings(args),
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


NOT_COMPARED = {"output", "settings", "worker", "worker_output", "work_dir", "keep_runs", "live_source"}
NOT_COMPARED |= {"jobs", "threads", "reuse", "quick"}
"""Arguments that do not change a setting's row (where it goes, how it is scheduled)."""


def comparable_settings(args: argparse.Namespace) -> dict:
    """The arguments a setting's row depends on (stored with the row, checked by ``--reuse``)."""
    return {k: v for k, v in vars(args).items() if k not in NOT_COMPARED}


def check_reusable(row: dict, args: argparse.Namespace, path: Path) -> None:
    """Stop when a stored row was made with other settings; rows written before settings were stored
    are accepted with a warning."""
    stored, now = row.get("run_settings"), comparable_settings(args)
    if stored is not None:  # an argument added after the row was made had its default then
        defaults = comparable_settings(parse_args(["--output", str(path)]))
        stored = {k: stored.get(k, defaults.get(k)) for k in now}
    if stored is None:
        print(f"warning: {path} records no settings (an older run); reusing it as is", file=sys.stderr)
        return
    changed = {k: (stored.get(k), v) for k, v in now.items() if stored.get(k) != v}
    if changed:
        listing = ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in sorted(changed.items()))
        raise SystemExit(
            f"{path} was made with other settings ({listing}).\n  fix: drop --reuse or delete it"
        )


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
    skip = {"output", "settings", "worker", "worker_output", "work_dir", "quick", "live_source", "jobs"}
    passthrough = [f"--work_dir={work_dir}"]
    for key, value in vars(args).items():
        if key in skip or value is None or value is False:
            continue
        passthrough.append(f"--{key}" if value is True else f"--{key}={value}")
    command = "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    result: dict = {
        "benchmark": "rm_accuracy (judges)",
        "headline": {},
        "settings": {
            "command": command,
            **{k: v for k, v in vars(args).items() if k not in ("worker", "worker_output")},
            "library": "working tree (live)" if args.live_source else "snapshot of genpref taken at start",
            "settings": {s: BACKBONES[SETTINGS[s][0]] | JUDGES[SETTINGS[s][1]] for s in settings},
        },
        "machine": machine_info(),
        "rows": [],
        "failed": {},
    }

    running: dict[str, subprocess.Popen] = {}
    stopping: list[int] = []
    reused: set[str] = set()

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
        if args.reuse and out_file.exists():
            row = json.loads(out_file.read_text())
            check_reusable(row, args, out_file)
            print(f"=== {name}: reusing {out_file}", file=sys.stderr, flush=True)
            reused.add(name)
            return name, 0, row.get("worker_seconds", 0.0)
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
            row["reused"] = name in reused
            result.setdefault("data", row.pop("data"))
            row.pop("data", None)
            result["rows"].append(row)
            result["rows"].sort(key=lambda r: settings.index(r["setting"]))
            e, a, h = row["eval200"]["overall"], row["arena"]["overall"], row["hh"]["overall"]
            print(
                f"=== {name}: eval200 {e['accuracy']:.4f}  arena {a['accuracy']:.4f}  hh {h['accuracy']:.4f}  {seconds:.0f} s wall, "
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


def _in_distribution_correct(row: dict) -> list[bool]:
    return list(row["eval200"]["correct"]) + list(row["arena"]["correct"])


def summarise(result: dict) -> None:
    """Headline, best judge and the pooled paired GPM − BT difference from the rows so far."""
    from genpref.eval.paired import mcnemar_test, paired_bootstrap

    rows = result["rows"]
    result["all_settings_same_genpref_source"] = len({r["genpref_source"]["sha256"] for r in rows}) <= 1
    if not rows:
        return
    best = max(
        rows, key=lambda r: (r["eval200"]["overall"]["accuracy"] + r["arena"]["overall"]["accuracy"]) / 2
    )
    headline = {
        "best_judge": best["setting"],
        "best_judge_accuracy_eval200": best["eval200"]["overall"]["accuracy"],
        "best_judge_accuracy_arena": best["arena"]["overall"]["accuracy"],
        "length_baseline_eval200": best["eval200"]["length_baseline"]["accuracy"],
        "length_baseline_arena": best["arena"]["length_baseline"]["accuracy"],
    }
    by_name = {r["setting"]: r for r in rows}
    bt, gpm = [], []
    for backbone in BACKBONES:
        if f"{backbone}_bt" in by_name and f"{backbone}_gpm" in by_name:
            bt += _in_distribution_correct(by_name[f"{backbone}_bt"])
            gpm += _in_distribution_correct(by_name[f"{backbone}_gpm"])
    if bt:
        boot = paired_bootstrap(bt, gpm, seed=0)
        headline["gpm_minus_bt_pooled"] = boot["difference"]
        headline["gpm_minus_bt_pooled_ci_low"] = boot["ci95"][0]
        result["gpm_minus_bt_pooled"] = {"bootstrap": boot, "mcnemar": mcnemar_test(bt, gpm)}
    headline["train_minutes"] = best["train_seconds"] / 60
    result["headline"] = headline


def print_table(result: dict) -> None:
    def acc(row, split):
        return row[split]["overall"]["accuracy"]

    rows = [
        {
            "setting": r["setting"],
            "eval200": acc(r, "eval200"),
            "len200": r["eval200"]["length_baseline"]["accuracy"],
            "arena": acc(r, "arena"),
            "len_arena": r["arena"]["length_baseline"]["accuracy"],
            "bo4": r["arena"]["best_of_n"]["accuracy"],
            "tau": r["arena"]["ranking"]["kendall_tau"],
            "hh": acc(r, "hh"),
            "minutes": r["train_seconds"] / 60,
        }
        for r in result["rows"]
    ]
    columns = [
        ("setting", "setting", ""),
        ("eval200", "eval200", ".4f"),
        ("len200", "longer wins", ".4f"),
        ("arena", "arena pairs", ".4f"),
        ("len_arena", "longer wins", ".4f"),
        ("bo4", "arena best-of-4", ".4f"),
        ("tau", "arena tau", ".3f"),
        ("hh", "HH (OOD)", ".4f"),
        ("minutes", "train min", ".1f"),
    ]
    print(format_table(rows, columns))
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
