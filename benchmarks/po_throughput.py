"""DPO training throughput, memory and MFU: genpref against TRL's ``DPOTrainer``, side by side.

Both sides train SmolLM2-135M-Instruct (``smollm2-135m``; TRL gets the converted safetensors folder
from ``resolve_backbone``) with DPO (β 0.1, lr 5e-7, batch 4, one epoch, fp32, no gradient
checkpointing) on the first --n_pairs valid rows of ``ultrafeedback_binarized_train1000.jsonl.gz``
at max length 512, on the CPU. Rows whose prompt alone has ≥ 512 tokens are skipped for both sides
(TRL drops them, genpref would cut the prompt), so both train on the same pairs in the same batches. Each setting runs in its own subprocess, so its peak RSS
(``ru_maxrss`` read at the end of the child) is its own. Settings:

* ``trl``: TRL 1.16 ``DPOTrainer`` with its defaults except those named here: the reference is a
  frozen copy of the policy run on every step; ``max_length=512``, ``truncation_mode="keep_start"``
  (the only mode it supports: it cuts the end of prompt + completion, while genpref cuts the prompt
  from the left and then the completion), ``bf16=False`` and ``gradient_checkpointing=False``
  (TRL's defaults are both True), ``report_to="none"``, ``save_strategy="no"``, logging off,
  ``dataloader_num_workers=0``, ``use_cpu=True``. The data is passed in genpref's first-epoch order
  with ``train_sampling_strategy="sequential"``, so both sides see the same pairs in every batch.
* ``genpref_fp32_cold``: ``train_policy_on`` with ``loss=dpo``, ``engine.packing=auto`` (padded
  batches here: packing pays off only with varlen flash-attention, which a CPU lacks), the reference
  precomputed into a fresh empty cache folder: the reference pass is inside the timed call.
* ``genpref_fp32_warm``: the same, reading the reference log-probs from that (now warm) cache.
* ``genpref_bf16``: ``train.precision=bf16`` and ``engine.reference_dtype=bf16``, fresh cache.
* ``genpref_fp32_packed_cold`` (optional): as the cold row with ``engine.packing=true`` forced.
* ``genpref_fp32_compiled_cold`` (optional): as the cold row with ``engine.compile=true`` (the decoder
  under ``torch.compile``; its compilations are inside the timed call).
* ``matmul``: the machine's peak, median GFLOP/s of ``torch.matmul`` on 2048×2048 float32 (and
  bfloat16) matrices, same thread count, one process.

bf16 on a CPU without native bf16 (``machine.cpu_fast_bf16`` false, e.g. AVX2 only, where a bf16 matmul
runs ~100x slower than fp32 and the peak step alone takes minutes): the bf16 matmul peak and the
``genpref_bf16`` row are skipped and listed under ``skipped`` unless ``--allow_slow_bf16``; that row
would otherwise train in fp32 (genpref's fallback) under a bf16 label.

Timing: wall time of the training call only, model loading excluded (genpref: ``train_policy_on``
with the loaded model handed in, so it includes tokenisation, the reference pass when cold, the loop
and writing the final model folder, which is also reported alone as ``save_s``; TRL:
``trainer.train()``; its tokenisation ran in ``DPOTrainer.__init__``).

MFU: model FLOPs are the standard 6·N·T per trained sequence set plus 2·N·T for a reference forward
computed inside the timed run (TRL every step; genpref only when the cache is cold), with N = every
parameter (the tied embedding / LM head counted once, so N includes the LM head) and T = the real
(non-padding) tokens of both sequences of every pair, as each side tokenised and truncated them.
Padding TRL computes on, attention FLOPs, and the LM-head work genpref skips on prompt tokens are
not counted (the standard formula credits genpref with LM-head FLOPs it never does). MFU = these
FLOPs / wall time / the matmul peak (fp32 peak for fp32 rows, bf16 peak for the bf16 row).

``max_loss_abs_diff_vs_trl``: |first-step loss (genpref) − first-step loss (TRL)| on the same first
batch of 4 pairs. At step one the policy equals the reference, so both losses are log 2 up to
numerical noise: the figure checks the two pipelines agree, not more. The first-batch mean log-probs
(which also reflect the two tokenisations) are reported next to it.

    python benchmarks/po_throughput.py --output po_throughput.json
    python benchmarks/po_throughput.py --n_pairs 32 --settings trl,genpref_fp32_cold --output quick.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    cpu_bf16_info,
    format_table,
    machine_info,
    offline_hub,
    peak_rss_mib,
    write_json,
)

DATA_FILE = "ultrafeedback_binarized_train1000.jsonl.gz"
GENPREF_SETTINGS = {  # name → (precision and reference dtype, cache folder, engine.packing, engine.compile)
    "genpref_fp32_cold": ("fp32", "cache_fp32", "auto", False),  # auto: padded on CPU (no varlen attention)
    "genpref_fp32_warm": ("fp32", "cache_fp32", "auto", False),  # run after the cold one: its cache is warm
    "genpref_bf16": ("bf16", "cache_bf16", "auto", False),
    "genpref_fp32_packed_cold": ("fp32", "cache_fp32_packed", True, False),  # optional: forced packing
    "genpref_fp32_compiled_cold": ("fp32", "cache_fp32_compiled", "auto", True),  # optional: torch.compile
}
SETTINGS = ("matmul", "trl", *GENPREF_SETTINGS)
DEFAULT_SETTINGS = ("matmul", "trl", "genpref_fp32_cold", "genpref_fp32_warm", "genpref_bf16")
POLICY = "smollm2-135m"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON file for all figures.")
    p.add_argument("--n_pairs", type=int, default=64, help="First N valid UltraFeedback rows.")
    p.add_argument("--max_length", type=int, default=512, help="Tokens of prompt + completion.")
    p.add_argument("--batch_size", type=int, default=4, help="Pairs per optimizer step (both sides).")
    p.add_argument("--lr", type=float, default=5e-7, help="Learning rate (both sides).")
    p.add_argument("--beta", type=float, default=0.1, help="DPO β (both sides).")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's).")
    p.add_argument(
        "--settings", default=",".join(DEFAULT_SETTINGS), help=f"Comma-separated subset of {SETTINGS}."
    )
    p.add_argument(
        "--allow_slow_bf16",
        action="store_true",
        help="Run the bf16 rows even on a CPU without native bf16 (slow; recorded as such).",
    )
    p.add_argument("--work_dir", default=None, help="Run folders and caches (default: a temporary folder).")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: run one setting
    p.add_argument("--worker_output", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------- worker


def _examples(n: int, max_length: int) -> tuple[list, int]:
    """The first ``n`` valid rows whose prompt alone is shorter than ``max_length`` tokens; and how many were skipped.

    TRL drops a pair whose prompt fills ``max_length`` (``keep_start`` would leave no completion), while
    genpref cuts the prompt; skipping such rows for both sides keeps the pairs and batches identical.
    """
    from genpref.data.load import load_preferences
    from genpref.data.paths import shared_data_dir
    from genpref.models.backbone import load_tokenizer, resolve_backbone

    data = shared_data_dir()
    if data is None:
        raise SystemExit("../shared/data not found (set GENPREF_SHARED_DATA)")
    report = load_preferences(str(data / DATA_FILE), on_error="skip", rejects_path=os.devnull)
    tokenizer = load_tokenizer(resolve_backbone(POLICY))
    kept, skipped = [], 0
    for ex in report.examples:
        if len(kept) == n:
            break
        if len(tokenizer(ex.prompt)["input_ids"]) >= max_length:
            skipped += 1
        else:
            kept.append(ex)
    if len(kept) < n:
        raise SystemExit(f"{DATA_FILE} has {len(kept)} usable rows, fewer than --n_pairs {n}")
    return kept, skipped


def _first_epoch_order(n: int, batch_size: int) -> list[int]:
    """genpref's data order for epoch 0 (``plan_steps``, seed 0, one process), flattened."""
    from genpref.train.config import TrainConfig
    from genpref.train.schedule import plan_steps

    plan = plan_steps(n, TrainConfig(batch_size=batch_size, seed=0), 1)
    return [i for step in plan for micro in step for i in micro]


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (less sensitive to other load than wall time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _matmul_peak(with_bf16: bool) -> dict:
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))[: 2 if with_bf16 else 1]:
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        for _ in range(3):
            torch.matmul(a, b)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - start)
        out[f"{name}_gflops_median"] = 2 * 2048**3 / statistics.median(times) / 1e9
        out[f"{name}_gflops_best"] = 2 * 2048**3 / min(times) / 1e9
    return out


def _run_genpref(
    args: argparse.Namespace,
    precision: str,
    cache: Path,
    packing: bool | str,
    run_dir: Path,
    compile: bool = False,
) -> dict:
    import torch

    import genpref.train.po as po
    from genpref.policy.model import load_policy
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.po_config import EngineConfig, LossConfig, PolicyConfig, POTrainConfig

    examples, skipped = _examples(args.n_pairs, args.max_length)
    lm, tokenizer = load_policy(POLICY)  # outside the timed call; handed to train_policy_on below
    po.load_policy = lambda *a, **k: (lm, tokenizer)
    timers = {"reference_s": 0.0, "save_s": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[key] += time.perf_counter() - start

        return wrapper

    po.attach_reference = timed(po.attach_reference, "reference_s")
    po.save_policy = timed(po.save_policy, "save_s")
    bf16 = precision == "bf16"
    cfg = POTrainConfig(
        policy=PolicyConfig(model=POLICY, max_length=args.max_length),
        loss=LossConfig(name="dpo", beta=args.beta),
        engine=EngineConfig(
            packing=packing,
            compile=compile,
            reference="precompute",
            reference_dtype="bf16" if bf16 else "fp32",
            cache_dir=str(cache),
        ),
        optim=OptimConfig(lr=args.lr, warmup_ratio=0.1),
        train=TrainConfig(
            epochs=1,
            batch_size=args.batch_size,
            precision=precision,
            progress=False,
            log_every=1,
            gradient_checkpointing=False,
            allow_slow_bf16=args.allow_slow_bf16,
        ),
        output_dir=str(run_dir),
    )
    cached_before = len(list(cache.glob("*.safetensors"))) if cache.exists() else 0
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    result = po.train_policy_on(cfg, examples, overwrite=True)
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    lines = [json.loads(line) for line in Path(result.metrics_path).read_text().splitlines() if line.strip()]
    first = next(line for line in lines if line.get("step") == 1)
    items = po.tokenize_pairs(tokenizer, examples, cfg)
    tokens = sum(len(it.chosen.input_ids) + len(it.rejected.input_ids) for it in items)
    completion_tokens = sum(len(s.input_ids) - s.prompt_len for it in items for s in (it.chosen, it.rejected))
    return {
        "train_s": seconds,
        "cpu_s": cpu_seconds,
        **timers,
        "pairs": len(items),
        "rows_skipped_prompt_too_long": skipped,
        "steps": result.steps,
        "reference_cache_was_warm": cached_before > 0,
        "reference_in_timed_run": cached_before == 0,
        "tokens": tokens,
        "completion_tokens": completion_tokens,
        "truncated_pairs": sum(it.chosen.truncated or it.rejected.truncated for it in items),
        "first_step_loss": first["loss"],
        "first_step_logps_chosen": first.get("logps_chosen"),
        "first_step_logps_rejected": first.get("logps_rejected"),
        "n_params": sum(p.numel() for p in lm.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def _run_trl(args: argparse.Namespace, run_dir: Path) -> dict:
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from genpref.models.backbone import load_tokenizer, resolve_backbone

    examples, skipped = _examples(args.n_pairs, args.max_length)
    order = _first_epoch_order(len(examples), args.batch_size)  # genpref's batches, in genpref's order
    rows = [{"prompt": examples[i].prompt, "chosen": examples[i].chosen, "rejected": examples[i].rejected}
            for i in order]  # fmt: skip
    path = resolve_backbone(POLICY)
    first_step: dict[str, float] = {}

    class RecordingDPOTrainer(DPOTrainer):
        """Keeps the first step's loss and mean log-probs (the trainer clears its metrics when it logs)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not first_step:
                metrics = self._metrics["train"]
                first_step.update(loss=float(loss.detach()), logps_chosen=metrics["logps/chosen"][-1],
                                  logps_rejected=metrics["logps/rejected"][-1])  # fmt: skip
            return loss

    config = DPOConfig(
        output_dir=str(run_dir),
        max_length=args.max_length,
        truncation_mode="keep_start",
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        num_train_epochs=1,
        learning_rate=args.lr,
        beta=args.beta,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
        use_cpu=True,
        seed=0,
        train_sampling_strategy="sequential",
        disable_tqdm=True,
    )
    trainer = RecordingDPOTrainer(
        model=path, args=config, train_dataset=Dataset.from_list(rows), processing_class=load_tokenizer(path)
    )
    data = trainer.train_dataset
    if len(data) != len(rows):  # the batches would no longer match genpref's
        raise SystemExit(
            f"TRL dropped {len(rows) - len(data)} of {len(rows)} pairs (prompt fills max_length)"
        )
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    trainer.train()
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    full = [(len(p) + len(c), len(p) + len(r))
            for p, c, r in zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"])]  # fmt: skip
    kept = [(min(c, args.max_length), min(r, args.max_length)) for c, r in full]  # keep_start: the end is cut
    prompts = [min(len(p), args.max_length) for p in data["prompt_ids"]]
    batches = [kept[i : i + args.batch_size] for i in range(0, len(kept), args.batch_size)]
    return {
        "train_s": seconds,
        "cpu_s": cpu_seconds,
        "pairs": len(data),
        "rows_skipped_prompt_too_long": skipped,
        "steps": trainer.state.global_step,
        "reference_in_timed_run": True,
        "tokens": sum(c + r for c, r in kept),
        "padded_tokens": sum(2 * len(b) * max(max(pair) for pair in b) for b in batches),
        "completion_tokens": sum(c + r for c, r in kept) - 2 * sum(prompts),
        "truncated_pairs": sum(max(pair) > args.max_length for pair in full),
        "dtype": str(trainer.model.dtype),
        "first_step_loss": first_step["loss"],
        "first_step_logps_chosen": first_step["logps_chosen"],
        "first_step_logps_rejected": first_step["logps_rejected"],
        "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def run_worker(args: argparse.Namespace) -> None:
    import torch

    offline_hub()
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.WARNING, format=f"[{args.worker}] %(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    name = args.worker
    if name == "matmul":
        out = _matmul_peak(with_bf16=args.allow_slow_bf16 or cpu_bf16_info()["cpu_fast_bf16"])
    elif name == "trl":
        out = _run_trl(args, work / "trl")
    elif name in GENPREF_SETTINGS:
        precision, cache, packing, compile = GENPREF_SETTINGS[name]
        out = _run_genpref(args, precision, work / cache, packing, work / name, compile)
    else:
        raise SystemExit(f"unknown setting {name}")
    out["peak_rss_mib"] = peak_rss_mib()
    Path(args.worker_output).write_text(json.dumps(out))


# ---------------------------------------------------------------------------------------- parent


def _mfu(row: dict, peaks: dict) -> None:
    """Model FLOPs (6·N·T, + 2·N·T for an in-run reference), achieved FLOP/s and MFU, added to ``row``."""
    n, t = row["n_params"], row["tokens"]
    flops = 6 * n * t + (2 * n * t if row["reference_in_timed_run"] else 0)
    row["model_flops"] = flops
    row["achieved_gflops"] = flops / row["train_s"] / 1e9
    peak = peaks.get("bf16_gflops_median" if row["setting"] == "genpref_bf16" else "fp32_gflops_median")
    row["mfu"] = None if not peak else row["achieved_gflops"] / peak


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return {}
    offline_hub()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown settings {sorted(unknown)}; choose from {SETTINGS}")
    if "genpref_fp32_warm" in settings and "genpref_fp32_cold" in settings:
        settings.remove("genpref_fp32_warm")  # the warm run needs the cache the cold run fills
        settings.insert(settings.index("genpref_fp32_cold") + 1, "genpref_fp32_warm")
    skipped = {}
    if not (args.allow_slow_bf16 or cpu_bf16_info()["cpu_fast_bf16"]):
        why = f"no native bf16 on this CPU ({cpu_bf16_info()['cpu_capability']}); --allow_slow_bf16 runs it"
        skipped = {s: why for s in settings if s == "genpref_bf16"} | {"matmul bf16 peak": why}
        settings = [s for s in settings if s != "genpref_bf16"]
        print(f"[po_throughput] skipping bf16: {why}", flush=True)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="po_throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "benchmark": "po_throughput",
        "machine": machine_info(),
        "config": {k: v for k, v in vars(args).items() if not k.startswith("worker")}
        | {
            "policy": POLICY,
            "data": DATA_FILE,
            "epochs": 1,
            "precision": "fp32 unless the setting says bf16",
            "gradient_checkpointing": False,
            "loss": "dpo (sigmoid)",
        },  # fmt: skip
        "flops_formula": "6*N*T (+2*N*T for a reference forward inside the timed run); N = all parameters "
        "(tied embedding/LM head once), T = real tokens of chosen + rejected of every pair",
        "rows": [],
        "failed": {},
        "skipped": skipped,
    }
    for name in settings:
        out_file = work / f"{name}.json"
        load_before = os.getloadavg()
        start = time.perf_counter()
        print(f"[po_throughput] running {name} ...", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, f"--worker={name}", f"--worker_output={out_file}", f"--work_dir={work}",
             f"--output={args.output}", f"--n_pairs={args.n_pairs}", f"--max_length={args.max_length}",
             f"--batch_size={args.batch_size}", f"--lr={args.lr}", f"--beta={args.beta}",
             *([f"--threads={args.threads}"] if args.threads is not None else []),
             *(["--allow_slow_bf16"] if args.allow_slow_bf16 else [])],
            check=False,
        )  # fmt: skip
        if proc.returncode != 0 or not out_file.exists():
            result["failed"][name] = f"worker exited with status {proc.returncode}"
            continue
        row = {"setting": name, **json.loads(out_file.read_text())}
        row["worker_s"] = time.perf_counter() - start
        row["loadavg_before"], row["loadavg_after"] = list(load_before), list(os.getloadavg())
        result["rows"].append(row)
        write_json(args.output, result)  # partial results after every setting

    rows = {r["setting"]: r for r in result["rows"]}
    peaks = rows.get("matmul", {})
    for row in rows.values():
        if row["setting"] != "matmul":
            row["pairs_per_s"] = row["pairs"] / row["train_s"]
            row["tokens_per_s"] = row["tokens"] / row["train_s"]
            row["pairs_per_cpu_s"] = row["pairs"] / row["cpu_s"]
            _mfu(row, peaks)
    ours, trl = rows.get("genpref_fp32_cold"), rows.get("trl")
    if ours and trl:
        for row in rows.values():
            if row["setting"].startswith("genpref"):
                row["pairs_per_s_ratio_vs_trl"] = row["pairs_per_s"] / trl["pairs_per_s"]
                row["peak_rss_ratio_vs_trl"] = row["peak_rss_mib"] / trl["peak_rss_mib"]
                row["pairs_per_cpu_s_ratio_vs_trl"] = row["pairs_per_cpu_s"] / trl["pairs_per_cpu_s"]
        result["headline"] = {
            "pairs_per_s_ratio_vs_trl": ours["pairs_per_s_ratio_vs_trl"],
            "peak_rss_ratio_vs_trl": ours["peak_rss_ratio_vs_trl"],
            "mfu": ours["mfu"],
            "pairs_per_cpu_s_ratio_vs_trl": ours["pairs_per_cpu_s_ratio_vs_trl"],
            "warm_cache_pairs_per_s_ratio_vs_trl": rows.get("genpref_fp32_warm", {}).get("pairs_per_s_ratio_vs_trl"),
            "max_loss_abs_diff_vs_trl": abs(ours["first_step_loss"] - trl["first_step_loss"]),
            "first_step_logps_chosen_abs_diff_vs_trl": abs(ours["first_step_logps_chosen"] - trl["first_step_logps_chosen"]),
            "first_step_logps_rejected_abs_diff_vs_trl": abs(ours["first_step_logps_rejected"] - trl["first_step_logps_rejected"]),
            "trl_mfu": trl["mfu"],
            "targets": {"pairs_per_s_ratio_vs_trl": ">= 1.5", "peak_rss_ratio_vs_trl": "<= 1.0", "mfu": ">= 0.60"},
            "met": {
                "pairs_per_s_ratio_vs_trl": ours["pairs_per_s_ratio_vs_trl"] >= 1.5,
                "peak_rss_ratio_vs_trl": ours["peak_rss_ratio_vs_trl"] <= 1.0,
                "mfu": ours["mfu"] is not None and ours["mfu"] >= 0.60,
            },
        }  # fmt: skip
    result["loadavg_end"] = list(os.getloadavg())
    write_json(args.output, result)
    table = [r for r in result["rows"] if r["setting"] != "matmul"]
    print(format_table(table, [
        ("setting", "setting", ""), ("train_s", "train s", ".1f"), ("pairs_per_s", "pairs/s", ".3f"),
        ("tokens", "tokens", "d"), ("peak_rss_mib", "peak RSS MiB", ".0f"), ("mfu", "MFU", ".3f"),
        ("first_step_loss", "loss@1", ".6f"), ("pairs_per_s_ratio_vs_trl", "x TRL", ".2f"),
    ]))  # fmt: skip
    if peaks:
        bf16 = peaks.get("bf16_gflops_median")
        print(
            f"matmul peak: fp32 {peaks['fp32_gflops_median']:.1f} GFLOP/s, "
            f"bf16 {'skipped' if bf16 is None else f'{bf16:.1f}'} GFLOP/s"
        )
    if "headline" in result:
        print(json.dumps(result["headline"], indent=2))
    if result["failed"]:
        print(f"failed: {result['failed']}")
    return result


if __name__ == "__main__":
    main()
