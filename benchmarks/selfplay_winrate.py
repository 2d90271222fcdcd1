"""Self-play on real prompts: does T iterations of GPO (and SPPO, at equal compute) improve
SmolLM2-135M-Instruct by its training judge and by an independently trained second judge?

    python benchmarks/selfplay_winrate.py --output selfplay_winrate.json          # defaults (below)
    python benchmarks/selfplay_winrate.py --judge J --second_judge J2 --output F  # reuse trained judges

Defaults (`genpref.demo.SELFPLAY_DEFAULTS`): 32 Arena-Hard training prompts (≤ 256 tokens), K = 8
samples each at temperature 1 (so the KL estimates are exact), ≤ 128 new tokens, every prompt followed
by the instruction "Answer briefly, in two or three sentences." (answers that finish instead of being
cut at the cap), η per iteration from the target scale (η · std(target) = 2 nats), AdamW lr 1e-5,
one epoch per iteration, 1 iteration (``--iterations 2``: better, in about twice the time). Evaluation:
the 80 MT-Bench first turns, one response per prompt per policy at temperature 0.7, judged by

* the training judge: the default judge recipe (``configs/rm_judge_gpm_minilm.yaml``: GPM k = 2, τ = 1,
  MiniLM, UltraFeedback train1000 + the arena training prompts), or ``--judge``;
* a second judge sharing no training row with it: BT on MiniLM trained on the *held-out* arena prompts
  (the 30 % the judge benchmark evaluates on), or ``--second_judge``.

Both judges' accuracies on UltraFeedback eval200 are reported. SPPO reuses GPO's first generation,
judgments and π_0 evaluation (they do not depend on the algorithm); from iteration 2 on it generates
from its own iterates. Headline (keys kept from the one-iteration benchmark it replaces, plus the
second judge): ``iteration_minutes`` (GPO minutes / iterations), ``reference_forwards``,
``gpo_winrate``, ``gpo_winrate_ci_low``, ``sppo_winrate``, ``sppo_winrate_ci_low``,
``gpo_winrate_second_judge``, ``gpo_winrate_second_judge_ci_low`` (π_T vs π_0), and ``gpo_minutes``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from genpref.data.paths import shared_data_dir  # noqa: E402
from genpref.demo import SELFPLAY_DEFAULTS  # noqa: E402

ARENA = "arena_bench_v1_scored.jsonl.gz"
UF_TRAIN = "ultrafeedback_binarized_train1000.jsonl.gz"
UF_EVAL = "ultrafeedback_binarized_eval200.jsonl.gz"


def _train_judge(
    out: Path, model_kw: dict, train: list, evals: list, steps: int, seed: int
) -> tuple[Path, float]:
    from genpref.models.config import PreferenceModelConfig
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    cfg = RMTrainConfig(
        model=PreferenceModelConfig(backbone="minilm", max_length=256, **model_kw),
        optim=OptimConfig(lr=5e-5, head_lr=1e-3, warmup_ratio=0.1),
        train=TrainConfig(epochs=100, max_steps=steps, batch_size=8, seed=seed, progress=False),
        output_dir=str(out),
    )
    result = train_preference_model_on(cfg, list(train), list(evals), overwrite=True)
    return result.final_dir, result.eval_metrics["overall"]["accuracy"]


def train_judges(out: Path, args) -> dict:
    """The training judge (default recipe) and the second judge (held-out arena prompts only)."""
    from genpref.data.load import load_preferences, load_rankings
    from genpref.data.rankings import RankingPairConfig, pairs_from_rankings, split_by_prompt

    shared = shared_data_dir()
    evals = load_preferences(shared / UF_EVAL, on_error="skip").examples
    arena = load_rankings(shared / ARENA, drop_empty_responses=True).examples
    arena_train, arena_held = split_by_prompt(arena, 0.3, seed=0)  # as benchmarks/rm_accuracy.py
    judges: dict = {}
    if args.judge is None:
        start = time.perf_counter()
        uf = load_preferences(shared / UF_TRAIN, on_error="skip").examples
        pairs = pairs_from_rankings(arena_train, RankingPairConfig(min_score_gap=3, max_pairs_per_prompt=8))
        path, acc = _train_judge(
            out / "judge",
            dict(type="gpm", k=2, tau=1.0, l2_normalize=False),
            list(uf) + pairs,
            evals,
            args.judge_steps,
            args.seed,
        )
        judges["judge"] = {
            "path": str(path),
            "eval200_accuracy": acc,
            "minutes": (time.perf_counter() - start) / 60,
        }
    if args.second_judge is None:
        start = time.perf_counter()
        pairs = pairs_from_rankings(arena_held, RankingPairConfig(min_score_gap=3))
        path, acc = _train_judge(
            out / "second_judge", dict(type="bt"), pairs, evals, args.judge_steps, args.seed + 1
        )
        judges["second_judge"] = {
            "path": str(path),
            "eval200_accuracy": acc,
            "minutes": (time.perf_counter() - start) / 60,
            "train_pairs": len(pairs),
        }
    return judges


def selfplay_config(algorithm: str, judge: str, second: str, out: Path, args):
    from genpref.demo import demo_selfplay_config

    return demo_selfplay_config(
        algorithm,
        Path(judge),
        out / algorithm,
        prompts=args.prompts,
        eval_prompts=args.eval_prompts,
        k=args.k,
        iterations=args.iterations,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        target_nats=args.target_nats,
        lr=args.lr,
        epochs=args.epochs,
        instruction=args.instruction or None,
        extra_judges=[second],
    )


POLICY_FORWARDS = {"with_grad": 0, "no_grad": 0, "diagnostic": 0}
"""Sequences through the policy's training log-prob module (``genpref.policy.logprobs.PolicyLogps``), by
grad mode, and through the fit diagnostic's no-grad pass (``selfplay.run.sequence_logps``), counted apart.
A reference forward would be a no-grad pass through the training module: self-play reads log π_t
recorded at generation."""


def count_policy_forwards() -> None:
    import genpref.selfplay.run as run
    from genpref.policy.logprobs import PolicyLogps

    forward, diagnostic = PolicyLogps.forward, run.sequence_logps

    def counted(self, *args, **kwargs):
        logps, counts = forward(self, *args, **kwargs)
        POLICY_FORWARDS["with_grad" if torch.is_grad_enabled() else "no_grad"] += int(logps.shape[0])
        return logps, counts

    def counted_diagnostic(cfg, policy_path, items):
        POLICY_FORWARDS["diagnostic"] += len(items)
        return diagnostic(cfg, policy_path, items)

    PolicyLogps.forward, run.sequence_logps = counted, counted_diagnostic


def stage_seconds(folder: Path) -> dict:
    out = {}
    for marker in sorted(folder.rglob("*.done.json")):
        out[str(marker.relative_to(folder)).removesuffix(".done.json")] = json.loads(marker.read_text()).get(
            "seconds"
        )
    return out


def share_first_iteration(src: Path, dst: Path) -> None:
    """SPPO starts from the same samples, judgments and π_0 evaluation as GPO."""
    (dst / "iter-0").mkdir(parents=True, exist_ok=True)
    for name in ("generations.jsonl", "generate.done.json", "judgments.jsonl", "judge.done.json"):
        shutil.copy(src / "iter-0" / name, dst / "iter-0" / name)
    for name in ("eval_policy0.jsonl", "eval_policy0.done.json"):
        shutil.copy(src / name, dst / name)


def final_row(rows: list[dict], second: str) -> dict:
    last = rows[-1]
    return {
        "winrate": last["vs_policy0"]["winrate"],
        "ci_low": last["vs_policy0"]["ci_low"],
        "lc_winrate": last["vs_policy0"]["lc_winrate"],
        "second_judge_winrate": last["judges"][second]["vs_policy0"]["winrate"],
        "second_judge_ci_low": last["judges"][second]["vs_policy0"]["ci_low"],
        "second_judge_lc_winrate": last["judges"][second]["vs_policy0"]["lc_winrate"],
        "mean_len": last["vs_policy0"]["mean_len_new"],
        "mean_len_policy0": last["vs_policy0"]["mean_len_old"],
        "cap_share": last["vs_policy0"]["cap_share_new"],
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = SELFPLAY_DEFAULTS
    p.add_argument("--output", required=True)
    p.add_argument("--work_dir", default="runs/bench_selfplay_winrate")
    p.add_argument(
        "--judge", default=None, help="training judge checkpoint (default: train the default recipe)"
    )
    p.add_argument(
        "--second_judge", default=None, help="second judge (default: BT on the held-out arena prompts)"
    )
    p.add_argument("--judge_steps", type=int, default=200, help="optimizer steps of each judge trained here")
    p.add_argument("--algorithms", default="gpo,sppo")
    p.add_argument("--prompts", type=int, default=d.prompts)
    p.add_argument("--eval_prompts", type=int, default=d.eval_prompts)
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--iterations", type=int, default=d.iterations)
    p.add_argument("--max_new_tokens", type=int, default=d.max_new_tokens)
    p.add_argument("--target_nats", type=float, default=d.target_nats)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--instruction", default=d.instruction, help="'' for none")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if shared_data_dir() is None:
        raise SystemExit("../shared/data not found: this benchmark needs the shared prompts and preferences")
    from genpref.selfplay.run import run_selfplay

    out = Path(args.work_dir)
    out.mkdir(parents=True, exist_ok=True)
    count_policy_forwards()
    trained = train_judges(out, args)
    judge = args.judge or trained["judge"]["path"]
    second = args.second_judge or trained["second_judge"]["path"]
    results: dict = {"judges": trained, "runs": {}, "minutes": {}}
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    for algorithm in algorithms:
        if algorithm != algorithms[0]:
            share_first_iteration(out / algorithms[0], out / algorithm)
        start = time.perf_counter()
        rows = run_selfplay(selfplay_config(algorithm, judge, second, out, args))
        results["minutes"][algorithm] = (time.perf_counter() - start) / 60
        results["runs"][algorithm] = {
            "iterations": rows,
            "final": final_row(rows, second),
            "stage_seconds": stage_seconds(out / algorithm),
        }
    headline = {
        "iteration_minutes": results["minutes"][algorithms[0]] / args.iterations,
        "reference_forwards": POLICY_FORWARDS["no_grad"],
    }
    for algorithm in algorithms:
        f = results["runs"][algorithm]["final"]
        headline[f"{algorithm}_winrate"] = f["winrate"]
        headline[f"{algorithm}_winrate_ci_low"] = f["ci_low"]
        headline[f"{algorithm}_winrate_second_judge"] = f["second_judge_winrate"]
        headline[f"{algorithm}_winrate_second_judge_ci_low"] = f["second_judge_ci_low"]
        headline[f"{algorithm}_minutes"] = results["minutes"][algorithm]
    results = {
        "headline": headline,
        **results,
        "policy_sequences": POLICY_FORWARDS,
        "settings": vars(args),
        "peak_rss_gib": round(peak_rss_mib() / 1024, 2),
        "machine": machine_info() | {"load_average_at_end": os.getloadavg()},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(json.dumps(headline, indent=2))
    return results


if __name__ == "__main__":
    main()
