"""DPO on a GPU: genpref against TRL's ``DPOTrainer`` (live reference, and ``precompute_ref_log_probs``).

All sides train the same random-weight Llama-shaped model, built from a config (``--size``; no
download; saved once as safetensors and loaded by every side), with SmolLM2's tokenizer, on the
first --n_pairs UltraFeedback pairs whose prompt fits --max_length, in genpref's first-epoch batches
(TRL gets the rows in that order with sequential sampling). DPO β 0.1, lr 5e-7, one epoch, no
gradient checkpointing, dropout off. Each side runs in its own subprocess, so its peak memory is its
own. Settings:

* ``matmul``: the device's measured matmul peak (median of 4096² products, bf16 and fp32).
* ``genpref``: ``train_policy_on``, the reference precomputed into an empty cache (inside the timing).
* ``trl``: TRL's default frozen reference copy run on every step.
* ``trl_precompute``: ``precompute_ref_log_probs=True`` (done in ``DPOTrainer.__init__``).

Timing (``torch.cuda.synchronize`` at every mark): ``end_to_end_s`` = tokenisation + reference +
training + writing the final model; for TRL ``DPOTrainer.__init__`` (tokenisation, model hash,
reference precompute) + ``train()`` + ``save_model()`` (before 2026-11-28 TRL's figure had no save).
``steady_pairs_per_s``: the training steps after
--warmup_steps, from the start of the first timed step to the end of the last. Model FLOPs as in
``po_throughput.py``: 6·N·T per trained pair set (+2·N·T per reference forward in the run); MFU =
FLOPs / time / the measured matmul peak of the run's precision. Memory: peak allocated CUDA memory
(``max_memory_allocated``), or peak RSS with ``--device cpu``.

Same numbers: the first-step summed completion log-probs of every pair that neither side truncates
(genpref's precomputed reference = the policy at step one; TRL's ``ref_chosen_logps`` column) must
agree within 1e-3 relative (``logps_max_rel_diff_vs_trl``); pairs where a token spans the prompt/completion
boundary are left out and counted (``logps_pairs_left_out_boundary``: TRL and genpref tokenise them
differently by design, see ``_merges_at_boundary``). With ``--profile`` the genpref worker
adds the top kernels of one training step (``torch.profiler``) to its row.

    python benchmarks/gpu_throughput.py --output gpu.json                       # a GPU, 1B model
    python benchmarks/gpu_throughput.py --device cpu --size tiny --n_pairs 12 --max_length 128 \\
        --batch_size 4 --output cpu.json                                        # the CPU test's size
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, machine_info, offline_hub, peak_rss_mib, write_json  # noqa: E402

SIZES = {  # Llama-shaped; "1b" has 1.07 B parameters with SmolLM2's 49,152-token vocabulary (tied head)
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=21, num_attention_heads=32,
               num_key_value_heads=8),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}  # fmt: skip
SETTINGS = ("matmul", "genpref", "trl", "trl_precompute")
REL_TOL = 1e-3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON file for all figures.")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="Where every side runs.")
    p.add_argument("--size", choices=tuple(SIZES), default="1b", help="Model shape.")
    p.add_argument(
        "--precision", choices=("bf16", "fp32"), default=None, help="Default: bf16 on cuda, else fp32."
    )
    p.add_argument("--n_pairs", type=int, default=512, help="First N usable UltraFeedback pairs.")
    p.add_argument("--max_length", type=int, default=512, help="Tokens of prompt + completion.")
    p.add_argument("--batch_size", type=int, default=8, help="Pairs per optimizer step (every side).")
    p.add_argument("--warmup_steps", type=int, default=3, help="Steps left out of the steady rate.")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"Comma-separated subset of {SETTINGS}.")
    p.add_argument("--profile", action="store_true", help="Kernel profile of one genpref step.")
    p.add_argument(
        "--attention",
        default="auto",
        choices=("auto", "sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3"),
        help="genpref's policy.attention (flex/flash attention: packed, padding-free batches; CUDA only for flex).",
    )
    p.add_argument(
        "--compile", action="store_true", help="genpref's engine.compile (torch.compile the decoder)."
    )
    p.add_argument("--work_dir", default=None, help="Model, caches and runs (default: a temporary folder).")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker_output", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    return args


# ---------------------------------------------------------------------------------------- worker


def _sync(device: str) -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def _peak_memory_gib(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return peak_rss_mib() / 1024


def _build_model(folder: Path, size: str) -> None:
    """A random-weight Llama (seed 0) with SmolLM2's tokenizer, saved as a transformers folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from genpref.models.backbone import load_tokenizer, resolve_backbone

    tokenizer = load_tokenizer(resolve_backbone("smollm2-135m"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=8192, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **SIZES[size],
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _matmul_peak(device: str) -> dict:
    import torch

    out, n = {}, 4096 if device == "cuda" else 512
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
        for _ in range(3):
            a @ b
        times = []
        for _ in range(10):
            start = _sync(device)
            a @ b
            times.append(_sync(device) - start)
        out[f"{name}_tflops"] = 2 * n**3 / statistics.median(times) / 1e12
    return out


def _run_genpref(args: argparse.Namespace, model_dir: Path, work: Path) -> dict:

    from po_throughput import _examples

    import genpref.train.po as po
    from genpref.policy.model import load_policy
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.po_config import EngineConfig, LossConfig, PolicyConfig, POTrainConfig

    examples, _ = _examples(args.n_pairs, args.max_length)
    lm, tokenizer = load_policy(str(model_dir), attention=args.attention)
    po.load_policy = lambda *a, **k: (lm, tokenizer)  # loading stays outside the timing
    marks: dict = {"steps": [], "reference": [], "save": []}
    items_seen: list = []

    def timed(fn, key):
        def wrapper(*a, **k):
            start = _sync(args.device)
            try:
                return fn(*a, **k)
            finally:
                marks[key].append((start, _sync(args.device)))

        return wrapper

    def attach(lm_, items, *a, **k):
        items_seen.append(items)
        return real_attach(lm_, items, *a, **k)

    real_attach = po.attach_reference
    po.attach_reference = timed(attach, "reference")
    po.save_policy = timed(po.save_policy, "save")
    step = po.PreferenceOptimizationRecipe.micro_step
    po.PreferenceOptimizationRecipe.micro_step = lambda self, *a: (
        marks["steps"].append(_sync(args.device)) or step(self, *a)
    )
    cfg = POTrainConfig(
        policy=PolicyConfig(model=str(model_dir), max_length=args.max_length, attention=args.attention),
        loss=LossConfig(name="dpo", beta=0.1),
        engine=EngineConfig(
            reference_dtype=args.precision, cache_dir=str(work / "genpref_cache"), compile=args.compile
        ),
        optim=OptimConfig(lr=5e-7, warmup_ratio=0.1),
        train=TrainConfig(batch_size=args.batch_size, precision=args.precision, progress=False, log_every=1),
        output_dir=str(work / "genpref_run"),
    )
    start = _sync(args.device)
    result = po.train_policy_on(cfg, examples, overwrite=True)
    end = _sync(args.device)
    items = items_seen[0]
    steps = marks["steps"]
    warm = min(args.warmup_steps, len(steps) - 1)
    out = {
        "end_to_end_s": end - start,
        "reference_s": sum(b - a for a, b in marks["reference"]),
        "save_s": sum(b - a for a, b in marks["save"]),
        "steady_s": marks["save"][0][0] - steps[warm],
        "steady_pairs": sum(args.batch_size for _ in steps[warm:]),
        "steps": result.steps,
        "pairs": len(items),
        "tokens": sum(len(it.chosen.input_ids) + len(it.rejected.input_ids) for it in items),
        "n_params": sum(p.numel() for p in lm.parameters()),
        "logps": {
            str(i): [it.ref_chosen, it.ref_rejected]
            for i, it in enumerate(items)
            if not (it.chosen.truncated or it.rejected.truncated)
        },  # fmt: skip
        "boundary_merges": [
            str(i)
            for i, ex in enumerate(examples)
            if _merges_at_boundary(tokenizer, ex.prompt, ex.chosen)
            or _merges_at_boundary(tokenizer, ex.prompt, ex.rejected)
        ],  # fmt: skip
        "reference_in_end_to_end": True,
    }
    if args.profile:
        out["profile"] = _profile_step(args, po, cfg, lm, tokenizer, items)
    return out


def _merges_at_boundary(tokenizer, prompt: str, completion: str) -> bool:
    """True when a token spans the prompt/completion boundary: the prompt's ids are not a prefix of the pair's.

    TRL then trains on a completion that starts where the two tokenisations diverge (and warns); genpref
    tokenises the prompt and the completion apart. Both are deliberate, so such a pair's log-probs differ
    by design (e.g. "A: " + "harder": TRL scores " harder", genpref "harder" after "A: ").
    """
    head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt + completion, add_special_tokens=False)["input_ids"][: len(head)] != head


def _profile_step(args, po, cfg, lm, tokenizer, items) -> list[dict]:
    """The 15 kernels (or CPU ops) with the most self time in one forward + backward of one batch."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    recipe = po.PreferenceOptimizationRecipe(cfg, items, [], tokenizer)
    model = po.PolicyLogps(lm, cfg.engine.logprob_chunk).to(args.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    with profile(activities=activities) as prof, autocast:
        batch = list(range(min(args.batch_size, len(items))))
        recipe.micro_step(model, batch, torch.device(args.device)).losses.sum().backward()
        _sync(args.device)
    key = "self_device_time_total" if args.device == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:15]
    total = sum(getattr(e, key) for e in prof.key_averages()) or 1
    return [{"name": e.key[:80], "share": getattr(e, key) / total, "calls": e.count} for e in events]


def _run_trl(args: argparse.Namespace, model_dir: Path, work: Path, precompute: bool) -> dict:
    import torch
    from datasets import Dataset
    from po_throughput import _examples, _first_epoch_order
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from genpref.models.backbone import load_tokenizer

    examples, _ = _examples(args.n_pairs, args.max_length)
    order = _first_epoch_order(len(examples), args.batch_size)
    rows = [{"prompt": examples[i].prompt, "chosen": examples[i].chosen, "rejected": examples[i].rejected}
            for i in order]  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    steps: list[float] = []

    class Marks(TrainerCallback):
        def on_step_begin(self, *a, **k):
            steps.append(_sync(args.device))

        def on_train_end(self, *a, **k):
            steps.append(_sync(args.device))

    config = DPOConfig(
        output_dir=str(work / ("trl_pre" if precompute else "trl")), max_length=args.max_length,
        truncation_mode="keep_start", per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1, num_train_epochs=1, learning_rate=5e-7, beta=0.1,
        bf16=args.precision == "bf16", gradient_checkpointing=False, report_to="none",
        save_strategy="no", logging_strategy="no", dataloader_num_workers=0,
        use_cpu=args.device == "cpu", seed=0, train_sampling_strategy="sequential", disable_tqdm=True,
        precompute_ref_log_probs=precompute,
    )  # fmt: skip
    start = _sync(args.device)
    trainer = DPOTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(str(model_dir)), callbacks=[Marks()],
    )  # fmt: skip
    init_s = _sync(args.device) - start
    trainer.train()
    saved = _sync(args.device)
    trainer.save_model(str(work / f"trl_final_{int(precompute)}"))  # both sides end with a model on disk
    end = _sync(args.device)
    data = trainer.train_dataset
    full = [(len(p) + len(c), len(p) + len(r))
            for p, c, r in zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"])]  # fmt: skip
    warm = min(args.warmup_steps, len(steps) - 2)
    out = {
        "end_to_end_s": end - start,
        "init_s": init_s,
        "save_s": end - saved,
        "steady_s": steps[-1] - steps[warm],
        "steady_pairs": args.batch_size * (len(steps) - 1 - warm),
        "steps": trainer.state.global_step,
        "pairs": len(data),
        "tokens": sum(min(c, args.max_length) + min(r, args.max_length) for c, r in full),
        "n_params": sum(p.numel() for p in trainer.model.parameters()),
        "reference_in_end_to_end": True,
    }
    if precompute:  # row k of TRL's dataset is example order[k]; genpref's items are in example order
        out["logps"] = {str(order[k]): [c, r] for k, (c, r, lens) in
                        enumerate(zip(data["ref_chosen_logps"], data["ref_rejected_logps"], full))
                        if max(lens) <= args.max_length}  # fmt: skip
    return out


def run_worker(args: argparse.Namespace) -> None:
    offline_hub()
    os.environ.setdefault("TQDM_DISABLE", "1")
    work = Path(args.work_dir)
    if args.worker == "matmul":
        out = _matmul_peak(args.device)
    elif args.worker == "genpref":
        out = _run_genpref(args, work / "model", work)
    else:
        out = _run_trl(args, work / "model", work, precompute=args.worker == "trl_precompute")
    out["peak_memory_gib"] = _peak_memory_gib(args.device)
    Path(args.worker_output).write_text(json.dumps(out))


# ---------------------------------------------------------------------------------------- parent


def _max_rel_diff(ours: dict, theirs: dict, skip: set) -> tuple[float | None, int]:
    """max |a − b| / |b| over the summed log-probs of pairs that neither side truncated, minus ``skip``."""
    common = sorted(set(ours) & set(theirs) - skip)
    diffs = [abs(a - b) / max(abs(b), 1e-12) for i in common for a, b in zip(ours[i], theirs[i])]
    return (max(diffs) if diffs else None), len(common)


def summarise(result: dict, precision: str) -> None:
    """Rates, MFU and the headline, in place."""
    rows = {r["setting"]: r for r in result["rows"]}
    peak = rows.get("matmul", {}).get(f"{precision}_tflops")
    for row in rows.values():
        if row["setting"] == "matmul":
            continue
        n, t = row["n_params"], row["tokens"]
        row["pairs_per_s"] = row["pairs"] / row["end_to_end_s"]
        row["steady_pairs_per_s"] = row["steady_pairs"] / row["steady_s"]
        row["tokens_per_s"] = t / row["end_to_end_s"]
        row["model_flops"] = 6 * n * t + 2 * n * t  # training + one reference forward per sequence
        row["mfu"] = None if not peak else row["model_flops"] / row["end_to_end_s"] / (peak * 1e12)
        steady_flops = 6 * n * t * row["steady_pairs"] / row["pairs"]  # the reference is outside these steps
        if row["setting"] == "trl":  # its live reference runs inside every step
            steady_flops += 2 * n * t * row["steady_pairs"] / row["pairs"]
        row["steady_mfu"] = None if not peak else steady_flops / row["steady_s"] / (peak * 1e12)
    ours, trl, pre = rows.get("genpref"), rows.get("trl"), rows.get("trl_precompute")
    if not ours:
        return
    headline = {"device": result["machine"].get("gpu") or result["machine"]["cpu_model"], "mfu": ours["mfu"],
                "steady_mfu": ours["steady_mfu"]}  # fmt: skip
    if pre:
        headline["steady_ratio_vs_trl_precompute"] = ours["steady_pairs_per_s"] / pre["steady_pairs_per_s"]
        merged = set(ours.pop("boundary_merges", []))
        rel, n = _max_rel_diff(ours.pop("logps"), pre.pop("logps"), merged)
        headline["logps_max_rel_diff_vs_trl"], headline["logps_pairs_compared"] = rel, n
        headline["logps_pairs_left_out_boundary"] = len(merged)
        headline["logps_match"] = rel is not None and rel <= REL_TOL
    if trl:
        headline["end_to_end_ratio_vs_trl"] = ours["pairs_per_s"] / trl["pairs_per_s"]
        headline["peak_memory_ratio_vs_trl"] = ours["peak_memory_gib"] / trl["peak_memory_gib"]
    if pre:
        headline["end_to_end_ratio_vs_trl_precompute"] = ours["pairs_per_s"] / pre["pairs_per_s"]
    headline["targets"] = {"steady_ratio_vs_trl_precompute": ">= 1.5", "end_to_end_ratio_vs_trl": ">= 1.3",
                           "peak_memory_ratio_vs_trl": "<= 1.0", "mfu": ">= 0.40",
                           "logps_max_rel_diff_vs_trl": f"<= {REL_TOL}"}  # fmt: skip
    ours.pop("logps", None)
    ours.pop("boundary_merges", None)
    result["headline"] = headline


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return {}
    offline_hub()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if set(settings) - set(SETTINGS):
        raise SystemExit(f"unknown settings {sorted(set(settings) - set(SETTINGS))}; choose from {SETTINGS}")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu_throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "model" / "config.json").exists():
        _build_model(work / "model", args.size)
    result: dict = {
        "benchmark": "gpu_throughput",
        "machine": machine_info(),
        "config": {k: v for k, v in vars(args).items() if not k.startswith("worker")}
        | {"model": SIZES[args.size]},
        "rows": [],
        "failed": {},
    }
    passed = ["--device", args.device, "--size", args.size, "--precision", args.precision, "--n_pairs",
              str(args.n_pairs), "--max_length", str(args.max_length), "--batch_size", str(args.batch_size),
              "--warmup_steps", str(args.warmup_steps), "--work_dir", str(work), "--output", args.output,
              "--attention", args.attention, *(["--profile"] if args.profile else []),
              *(["--compile"] if args.compile else [])]  # fmt: skip
    for name in settings:
        out_file = work / f"{name}.json"
        print(f"[gpu_throughput] running {name} ...", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, f"--worker={name}", f"--worker_output={out_file}", *passed],
            check=False,
        )
        if proc.returncode != 0 or not out_file.exists():
            result["failed"][name] = f"worker exited with status {proc.returncode}"
            continue
        result["rows"].append({"setting": name, **json.loads(out_file.read_text())})
    summarise(result, args.precision)
    write_json(args.output, result)
    table = [r for r in result["rows"] if r["setting"] != "matmul"]
    print(format_table(table, [
        ("setting", "setting", ""), ("pairs_per_s", "pairs/s ref+train", ".2f"),
        ("steady_pairs_per_s", "pairs/s steady", ".2f"), ("tokens_per_s", "tokens/s", ".0f"),
        ("peak_memory_gib", "peak GiB", ".2f"), ("mfu", "MFU", ".3f"), ("steady_mfu", "MFU steady", ".3f"),
    ]))  # fmt: skip
    if "headline" in result:
        print(json.dumps(result["headline"]))
    if result["failed"]:
        print(f"failed: {result['failed']}")
    return result


if __name__ == "__main__":
    main()
