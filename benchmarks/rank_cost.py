"""Cost of ranking K responses to one prompt: GPM (K forwards) against PairPM (K(K−1) forwards).

A GPM embeds each response once and reads every pairwise preference off the embeddings, so the full
K×K preference matrix costs K backbone forwards (K + 1 for a prompt-gated *encoder*, which needs one
prompt-only forward; a decoder reads the prompt state from the response sequences). A pairwise
classifier (PairPM) must read (x, y_i, y_j) jointly for every ordered pair: K(K−1) forwards.
(arXiv 2410.02197, §4: "linear query complexity".)

For each K in --ks and each of --n_prompts real prompts we call ``PreferenceModel.rank`` and record
the backbone forwards it reports (``RankResult.forwards``) and its wall time. Prompts and responses
come from ``ultrafeedback_binarized_eval200.jsonl.gz``: prompt i gets the chosen and rejected texts of
rows i, i+1, …, i+K/2−1 (neighbouring rows, so responses are real but mostly off-topic for the
prompt; cost does not depend on that). Heads are untrained: cost does not depend on the weights.

Timing: one untimed warm-up ``rank`` per (model, K) on a prompt outside the measured ones, then the
median over prompts. The time includes tokenisation (PairPM tokenises K(K−1) joint sequences) and
padding, i.e. what a user of ``rank`` pays. Every model uses the same --batch_size and --max_length
(for PairPM max_length bounds the joint (x, a, b) sequence, so each of its forwards is at most as long
as a GPM forward over (x, y)).

    python benchmarks/rank_cost.py --output rank_cost.json
    python benchmarks/rank_cost.py --backbone smollm2-135m --n_prompts 3 --output rank_cost_smollm.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, machine_info, offline_hub, peak_rss_mib, write_json  # noqa: E402

# name → PreferenceModelConfig overrides; the first GPM entry is the one in the headline.
MODELS = {
    "gpm_k2": dict(type="gpm", k=2),
    "gpm_k2_gate": dict(type="gpm", k=2, prompt_gate=True),
    "pairpm": dict(type="pairpm"),
}
DATA_FILE = "ultrafeedback_binarized_eval200.jsonl.gz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON file for all figures.")
    p.add_argument("--backbone", default="minilm", help="minilm, smollm2-135m or a model folder.")
    p.add_argument("--ks", default="2,4,8,16", help="Comma-separated numbers of responses K (even).")
    p.add_argument("--n_prompts", type=int, default=8, help="Measured prompts per (model, K).")
    p.add_argument("--batch_size", type=int, default=16, help="Sequences per forward batch (all models).")
    p.add_argument("--max_length", type=int, default=256, help="Tokens per sequence (all models).")
    p.add_argument("--repeats", type=int, default=1, help="Timed rank calls per prompt and model.")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    p.add_argument("--seed", type=int, default=0, help="Seed for the (untrained) head initialisation.")
    return p.parse_args(argv)


def build_tasks(examples, ks: list[int], n_prompts: int) -> tuple[dict, object]:
    """Per K: n_prompts (prompt, responses) tasks; plus one warm-up prompt not among them."""
    n = len(examples)
    need = n_prompts + 1 + max(ks) // 2
    if need > n:
        raise SystemExit(f"need {need} rows for n_prompts={n_prompts}, K={max(ks)}; the data has {n}")

    def responses(start: int, k: int) -> list[str]:
        rows = examples[start : start + k // 2]
        return [text for ex in rows for text in (ex.chosen, ex.rejected)]

    tasks = {k: [(examples[i].prompt, responses(i, k)) for i in range(n_prompts)] for k in ks}
    warm_prompt = examples[n_prompts].prompt  # outside the measured prompts
    return tasks, warm_prompt


class TokenCounter:
    """Counts padded and real tokens fed to a backbone (a forward pre-hook; the model is untouched)."""

    def __init__(self, module) -> None:
        self.padded = 0
        self.real = 0
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        self.padded += int(ids.numel())
        self.real += int(mask.sum()) if mask is not None else int(ids.numel())


def measure_k(models: dict, tasks: list, warm_prompt, k: int, batch_size: int, repeats: int) -> dict:
    """Rank every task with every model; forwards, tokens, wall and CPU seconds per prompt.

    Each model is warmed up once on ``warm_prompt``; then, per task and repeat, the models run back
    to back in a rotating order, so background load on a shared machine hits all of them alike.
    """
    names = list(models)
    counters = {name: TokenCounter(m.backbone) for name, m in models.items()}
    for name, m in models.items():
        m.rank(warm_prompt, tasks[0][1], batch_size=batch_size)  # same K and lengths as the tasks
        counters[name].padded = counters[name].real = 0
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    forwards = {n: [] for n in names}
    turn = 0
    for prompt, responses in tasks:
        assert len(responses) == k
        for _ in range(repeats):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                w0, c0 = time.perf_counter(), time.process_time()
                result = models[name].rank(prompt, responses, batch_size=batch_size)
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)
                forwards[name].append(result.forwards)
                assert result.prob_matrix.shape == (k, k)
            turn += 1
    out = {}
    for name in names:
        counters[name].handle.remove()
        calls = len(wall[name])
        fw = forwards[name]
        out[name] = {
            "forwards_per_prompt": fw[0] if len(set(fw)) == 1 else statistics.median(fw),
            "median_seconds": statistics.median(wall[name]),
            "min_seconds": min(wall[name]),
            "max_seconds": max(wall[name]),
            "median_cpu_seconds": statistics.median(cpu[name]),
            "padded_tokens_per_prompt": counters[name].padded / calls,
            "real_tokens_per_prompt": counters[name].real / calls,
            "calls": calls,
            "seconds_all": wall[name],
            "cpu_seconds_all": cpu[name],
            "forwards_all": fw,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    bench_start = time.perf_counter()
    offline_hub()
    import torch

    from genpref.data.load import load_preferences
    from genpref.data.paths import shared_data_dir
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    if any(k < 2 or k % 2 for k in ks):
        raise SystemExit(f"--ks must be even numbers >= 2, got {ks}")
    data_dir = shared_data_dir()
    if data_dir is None:
        raise SystemExit("no ../shared/data folder found (set GENPREF_SHARED_DATA)")
    report = load_preferences(data_dir / DATA_FILE, on_error="skip")
    tasks, warm_prompt = build_tasks(report.examples, ks, args.n_prompts)

    models = {}
    load_seconds = {}
    for name, overrides in MODELS.items():
        torch.manual_seed(args.seed)
        cfg = PreferenceModelConfig(backbone=args.backbone, max_length=args.max_length, **overrides)
        start = time.perf_counter()
        models[name] = PreferenceModel.from_config(cfg).eval()
        load_seconds[name] = time.perf_counter() - start
    is_encoder = next(iter(models.values())).is_encoder

    rows = []
    for k in ks:
        load_before = os.getloadavg()
        per_model = measure_k(models, tasks[k], warm_prompt, k, args.batch_size, args.repeats)
        load_after = os.getloadavg()
        pair = per_model["pairpm"]
        for name, r in per_model.items():
            rows.append(
                {
                    "k_responses": k,
                    "model": name,
                    **r,
                    "forward_ratio_pairpm_over_this": pair["forwards_per_prompt"] / r["forwards_per_prompt"],
                    "speedup_pairpm_over_this": pair["median_seconds"] / r["median_seconds"],
                    "speedup_min_time": pair["min_seconds"] / r["min_seconds"],
                    "speedup_cpu_time": pair["median_cpu_seconds"] / r["median_cpu_seconds"],
                    "loadavg_1min_before_after": [load_before[0], load_after[0]],
                }
            )
        print(f"K={k} done", file=sys.stderr, flush=True)

    def row(k: int, name: str) -> dict | None:
        return next((r for r in rows if r["k_responses"] == k and r["model"] == name), None)

    headline = {"backbone": args.backbone}
    if 8 in ks:
        headline.update(
            speedup_vs_pairpm_k8=row(8, "gpm_k2")["speedup_pairpm_over_this"],
            speedup_vs_pairpm_k8_cpu_time=row(8, "gpm_k2")["speedup_cpu_time"],
            speedup_vs_pairpm_k8_gated=row(8, "gpm_k2_gate")["speedup_pairpm_over_this"],
            forwards_gpm_k8=row(8, "gpm_k2")["forwards_per_prompt"],
            forwards_gpm_gate_k8=row(8, "gpm_k2_gate")["forwards_per_prompt"],
            forwards_pairpm_k8=row(8, "pairpm")["forwards_per_prompt"],
            goal_speedup=5.0,
            goal_met=row(8, "gpm_k2")["speedup_pairpm_over_this"] >= 5.0,
        )
    result = {
        "benchmark": "rank_cost",
        "headline": headline,
        "settings": {
            "backbone": args.backbone,
            "backbone_is_encoder": is_encoder,
            "ks": ks,
            "n_prompts": args.n_prompts,
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "seed": args.seed,
            "models": MODELS,
            "data": f"{DATA_FILE}: {report.summary()}",
            "data_rows_skipped": len(report.rejected),
            "timing": (
                "median over prompts x repeats of PreferenceModel.rank wall time (perf_counter) and CPU "
                "time (process_time, all threads), after one warm-up call per model; models interleaved"
            ),
            "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        },
        "machine": machine_info(),
        "model_load_seconds": load_seconds,
        "peak_rss_mib": peak_rss_mib(),
        "benchmark_seconds": time.perf_counter() - bench_start,
        "rows": rows,
    }
    write_json(args.output, result)

    print(
        f"backbone {args.backbone} ({'encoder' if is_encoder else 'decoder'}), batch_size {args.batch_size}, "
        f"max_length {args.max_length}, median over {args.n_prompts} prompts"
    )
    print(
        format_table(
            rows,
            [
                ("k_responses", "K", "d"),
                ("model", "model", ""),
                ("forwards_per_prompt", "forwards", "g"),
                ("median_seconds", "median s", ".3f"),
                ("forward_ratio_pairpm_over_this", "PairPM/this fwd", ".2f"),
                ("speedup_pairpm_over_this", "PairPM/this time", ".2f"),
                ("speedup_min_time", "(min time)", ".2f"),
                ("speedup_cpu_time", "(CPU time)", ".2f"),
            ],
        )
    )
    print(f"headline: {headline}")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
