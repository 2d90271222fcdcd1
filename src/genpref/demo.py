"""The main job on embedded defaults: train and compare BT and GPM on the built-in minilm backbone.

Data, in order of preference (``--data auto``): the real UltraFeedback sample in ``../shared/data``
when present; else ``trl-lib/ultrafeedback_binarized`` from the hub when online; else the built-in
synthetic set (``genpref.data.synthetic``). The table says which one was used.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from genpref.commands import DemoArgs
from genpref.data.types import PreferenceExample
from genpref.errors import ConfigError

log = logging.getLogger("genpref")

DEMO_MODELS = {
    "BT": dict(type="bt"),
    "GPM (k=2)": dict(type="gpm", k=2),
}


def resolve_demo_data(args: DemoArgs) -> tuple[list[PreferenceExample], list[PreferenceExample], str]:
    """Training and evaluation comparisons plus a one-line description of where they came from."""
    from genpref.data.load import load_preferences
    from genpref.data.paths import shared_data_dir

    choice = args.data
    shared = shared_data_dir()
    rejects = Path(args.output_dir)
    if choice in ("auto", "shared") and shared is not None:
        sources = [
            (shared / "ultrafeedback_binarized_train1000.jsonl.gz", "train", args.max_train),
            (shared / "ultrafeedback_binarized_eval200.jsonl.gz", "eval", args.max_eval),
        ]
        reports = [
            load_preferences(
                path, on_error="skip", rejects_path=rejects / f"rejects_{tag}.jsonl", limit=limit
            )
            for path, tag, limit in sources
        ]
        for report in reports:
            print(report.summary())
        return (
            list(reports[0].examples),
            list(reports[1].examples),
            f"UltraFeedback (binarized) from {shared}",
        )
    if choice == "shared":
        raise ConfigError("--data shared: no ../shared/data folder found (set GENPREF_SHARED_DATA)")
    if choice in ("auto", "hub") and os.environ.get("HF_HUB_OFFLINE") != "1":
        hub = "trl-lib/ultrafeedback_binarized"
        try:
            train = load_preferences(hub, split="train", on_error="skip", limit=args.max_train).examples
            evals = load_preferences(hub, split="test", on_error="skip", limit=args.max_eval).examples
            return list(train), list(evals), f"{hub} from the Hugging Face hub"
        except Exception as exc:  # offline or hub unreachable: fall through to synthetic data
            if choice == "hub":
                raise ConfigError(f"--data hub: could not load {hub} ({exc})") from exc
            log.info(f"hub dataset unavailable ({type(exc).__name__}); using built-in synthetic data")
    from genpref.data.synthetic import make_synthetic_preferences

    data = make_synthetic_preferences(args.max_train + args.max_eval, seed=args.seed)
    return (
        data[: args.max_train],
        data[args.max_train :],
        "built-in synthetic preferences (genpref.data.synthetic)",
    )


def run_demo(args: DemoArgs) -> dict:
    from genpref.models.config import PreferenceModelConfig
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    train, evals, source = resolve_demo_data(args)
    print(f"data: {source}: {len(train)} training and {len(evals)} evaluation comparisons")
    out = Path(args.output_dir)
    rows = []
    for name, overrides in DEMO_MODELS.items():
        cfg = RMTrainConfig(
            model=PreferenceModelConfig(backbone="minilm", max_length=args.max_length, **overrides),
            optim=OptimConfig(lr=5e-5, head_lr=1e-3, warmup_ratio=0.1),
            train=TrainConfig(epochs=args.epochs, batch_size=8, seed=args.seed, log_every=10),
            output_dir=str(out / name.split()[0].lower()),
        )
        start = time.perf_counter()
        result = train_preference_model_on(cfg, train, evals, overwrite=True)
        seconds = time.perf_counter() - start
        o = result.eval_metrics["overall"]
        rows.append(
            {
                "model": name,
                "accuracy": o["accuracy"],
                "mean_prob_chosen": o["mean_prob_chosen"],
                "log_loss": o["log_loss"],
                "ece": o["ece"],
                "train_seconds": seconds,
                "checkpoint": str(result.final_dir),
            }
        )
    print(f"\n{'model':<12}{'accuracy':>10}{'P(chosen)':>11}{'log-loss':>10}{'ECE':>8}{'seconds':>9}")
    for r in rows:
        print(
            f"{r['model']:<12}{r['accuracy']:>10.4f}{r['mean_prob_chosen']:>11.4f}{r['log_loss']:>10.4f}{r['ece']:>8.4f}{r['train_seconds']:>9.1f}"
        )
    summary = {"data": source, "n_train": len(train), "n_eval": len(evals), "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\ncheckpoints and metrics under {out}/; table in {out / 'summary.json'}")
    return summary
