"""``genpref demo``: the main job on embedded defaults, in four parts (each can be run alone).

1. ``cyclic``: the paper's cyclic-preference experiment (``genpref bench cyclic`` defaults on two of its
   four datasets): BT, GPM and PairPM on the minilm encoder, held-out cycles, table next to the paper's, plots.
2. ``nash``: GPO and SPPO against the BT-reward loop on a preference game whose Nash equilibrium is
   known (``genpref bench nash`` defaults on its non-uniform game, without its iterative-DPO baseline):
   exploitability per iteration and simplex plots.
3. ``rm``: BT vs GPM on real preferences. Data, in order: the UltraFeedback sample in ``../shared/data``;
   else ``trl-lib/ultrafeedback_binarized`` from the hub when online; else the built-in synthetic set.
   The output says which one was used. Its GPM checkpoint is the judge of part 4.
4. ``selfplay``: one GPO iteration of SmolLM2-135M-Instruct judged by that GPM (K samples per prompt),
   evaluated by win-rate against the start policy on held-out prompts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from genpref.args import DemoArgs
from genpref.data.types import PreferenceExample
from genpref.errors import ConfigError

log = logging.getLogger("genpref")

DEMO_CYCLIC_DATASETS = ("no_honesty", "no_helpfulness")
"""The demo's cyclic part trains on two of the four leave-one-out datasets (``genpref bench cyclic`` runs
all four), so that the four parts together stay within 30 minutes on 2 CPU cores."""
DEMO_NASH_GAMES = ("pets_skewed",)
"""The demo's Nash part plays the game with the non-uniform equilibrium (``genpref bench nash`` plays
both), for the same reason."""
DEMO_NASH_METHODS = ("gpo", "sppo", "bt_reward")
"""... and leaves out iterative DPO, the second BT baseline (the benchmark runs it): with it the four parts
took 31.0 minutes (nash 6.5) on an idle 2-core AVX2 machine. Session 13 (8-epoch judges): 17.7 minutes
(nash 4.0) on an idle 2-core AVX-512 machine, an estimated 31–32 on the AVX2 one."""

DEMO_MODELS = {
    "BT": dict(type="bt"),
    "GPM (k=2)": dict(type="gpm", k=2, tau=1.0, l2_normalize=False),
}
"""The demo's judges: the model settings of the default judge recipe (``configs/rm_judge_gpm_minilm.yaml``:
GPM τ = 1 without L2), trained on fewer comparisons and shorter sequences so the part takes minutes."""


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


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def run_rm_part(args: DemoArgs, out: Path) -> dict:
    from genpref.eval.judge_eval import judge_pairs
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    train, evals, source = resolve_demo_data(args)
    print(f"data: {source}: {len(train)} training and {len(evals)} evaluation comparisons")
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
        pairs = judge_pairs(PreferenceModel.from_pretrained(result.final_dir), evals)
        rows.append(
            {
                "model": name,
                "accuracy": o["accuracy"],
                "accuracy_ci95": pairs["overall"]["ci95"],
                "length_baseline": pairs["length_baseline"]["accuracy"],
                "accuracy_chosen_longer": pairs["length_bias"]["preferred_longer"]["accuracy"],
                "accuracy_chosen_shorter": pairs["length_bias"]["preferred_shorter"]["accuracy"],
                "mean_prob_chosen": o["mean_prob_chosen"],
                "log_loss": o["log_loss"],
                "ece": o["ece"],
                "train_seconds": seconds,
                "checkpoint": str(result.final_dir),
            }
        )
    print(
        f"\n{'model':<12}{'accuracy':>10}{'95% CI':>16}{'longer wins':>13}{'chosen longer':>15}"
        f"{'chosen shorter':>16}{'log-loss':>10}{'seconds':>9}"
    )
    for r in rows:
        ci = f"[{r['accuracy_ci95'][0]:.3f}, {r['accuracy_ci95'][1]:.3f}]"
        print(
            f"{r['model']:<12}{r['accuracy']:>10.4f}{ci:>16}{r['length_baseline']:>13.4f}"
            f"{_fmt(r['accuracy_chosen_longer']):>15}{_fmt(r['accuracy_chosen_shorter']):>16}"
            f"{r['log_loss']:>10.4f}{r['train_seconds']:>9.1f}"
        )
    print(
        "longer wins: the rule 'the longer response is preferred' on the same rows; chosen longer / shorter: "
        "the judge's accuracy on rows where the preferred response is the longer / the shorter one"
    )
    return {"data": source, "n_train": len(train), "n_eval": len(evals), "rows": rows}


@dataclass(frozen=True)
class SelfPlayDemoSettings:
    """CPU-sized self-play settings of SmolLM2-135M-Instruct, shared by ``benchmarks/selfplay_winrate.py``
    (which measures them) and the demo's self-play part (which runs fewer iterations and prompts)."""

    prompts: int = 32
    """Arena-Hard training prompts per iteration."""
    eval_prompts: int = 80
    """MT-Bench first turns for the win-rates."""
    k: int = 8
    """Samples per prompt."""
    iterations: int = 1
    """Self-play iterations. Measured (``benchmarks/RESULTS.md``, 2-core CPU, idle): π_1 beats π_0 by
    both judges with the 95 % lower bound above ½ in 23.5 minutes; ``--iterations 2`` does better
    (0.597 / 0.640 against 0.568 / 0.579) in 43.5."""
    max_new_tokens: int = 128
    """Tokens per response (training and evaluation)."""
    instruction: str = "Answer briefly, in two or three sentences."
    """Appended to every prompt the policy sees (answers that finish instead of being cut at the cap)."""
    target_nats: float | None = 2.0
    """η per iteration from the target scale: η · std(target) = 2 nats (None: use ``eta``)."""
    eta: float = 1000.0
    """η when ``target_nats`` is None (the paper's value)."""
    lr: float = 1e-5
    """AdamW learning rate (the paper's 5e-7 is for an 8B policy and many more steps)."""
    epochs: int = 1
    """Passes over the iteration's samples."""
    temperature: float = 1.0
    """Sampling temperature of the training samples (1: samples from π_t itself, as SPPO's theory
    assumes, and exact KL estimates)."""
    max_prompt_tokens: int | None = 256
    """Skip longer training prompts (time and memory on a CPU)."""


SELFPLAY_DEFAULTS = SelfPlayDemoSettings()


def selfplay_prompts(n_train: int, n_eval: int, max_prompt_tokens: int | None):
    """Arena-Hard (train) and MT-Bench first turns (eval) from ../shared/data, else the built-in prompts."""
    from genpref.data.paths import shared_data_dir
    from genpref.selfplay.config import PromptsConfig

    shared = shared_data_dir()
    train, evals = (  # built-in prompts: disjoint train / eval halves
        ("builtin:train", "builtin:eval")
        if shared is None
        else (str(shared / "arena_hard_v0.1_questions.jsonl"), str(shared / "mt_bench_questions.jsonl"))
    )
    return PromptsConfig(
        train=train, eval=evals, limit=n_train, eval_limit=n_eval, max_prompt_tokens=max_prompt_tokens
    )


def demo_selfplay_config(
    algorithm: str,
    judge: Path,
    output_dir: Path,
    *,
    prompts: int = SELFPLAY_DEFAULTS.prompts,
    eval_prompts: int = SELFPLAY_DEFAULTS.eval_prompts,
    k: int = SELFPLAY_DEFAULTS.k,
    iterations: int = SELFPLAY_DEFAULTS.iterations,
    max_new_tokens: int = SELFPLAY_DEFAULTS.max_new_tokens,
    seed: int = 0,
    eta: float = SELFPLAY_DEFAULTS.eta,
    target_nats: float | None = SELFPLAY_DEFAULTS.target_nats,
    lr: float = SELFPLAY_DEFAULTS.lr,
    epochs: int = SELFPLAY_DEFAULTS.epochs,
    instruction: str | None = SELFPLAY_DEFAULTS.instruction,
    max_prompt_tokens: int | None = SELFPLAY_DEFAULTS.max_prompt_tokens,
    extra_judges: list[str] | None = None,
):
    """CPU-sized self-play of SmolLM2-135M-Instruct (the demo's self-play part and the benchmark)."""
    from dataclasses import replace

    from genpref.selfplay.config import EvalConfig, SelfPlayConfig
    from genpref.selfplay.generate import SamplingConfig
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.po_config import PolicyConfig

    return SelfPlayConfig(
        algorithm=algorithm,
        judge=str(judge),
        policy=PolicyConfig(model="smollm2-135m"),
        prompts=replace(
            selfplay_prompts(prompts, eval_prompts, max_prompt_tokens), instruction=instruction or None
        ),
        k=k,
        iterations=iterations,
        eta=eta,
        target_nats=target_nats,
        sampling=SamplingConfig(
            temperature=SELFPLAY_DEFAULTS.temperature, top_p=1.0, max_new_tokens=max_new_tokens, batch_size=32
        ),
        optim=OptimConfig(lr=lr, warmup_ratio=0.1),
        train=TrainConfig(epochs=epochs, batch_size=8, seed=seed, group_by_length=True),
        eval=EvalConfig(max_new_tokens=max_new_tokens, judges=list(extra_judges or [])),
        seed=seed,
        output_dir=str(output_dir),
    )


def run_selfplay_part(args: DemoArgs, out: Path, judge: Path) -> list[dict]:
    from genpref.selfplay.run import run_selfplay

    cfg = demo_selfplay_config(
        "gpo",
        judge,
        out / "selfplay",
        prompts=args.selfplay_prompts,
        eval_prompts=args.eval_prompts,
        k=args.k,
        iterations=1,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    print(f"self-play prompts: {cfg.prompts.train} (train), {cfg.prompts.eval} (eval)")
    return run_selfplay(cfg)


def run_demo(args: DemoArgs) -> dict:
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    timings: dict = {}
    if "cyclic" in args.parts:
        from genpref.cyclic.experiment import CyclicBenchArgs, run_cyclic_bench

        start = time.perf_counter()
        print("== part 1: cyclic preferences (BT vs GPM vs PairPM) ==")
        summary["cyclic"] = run_cyclic_bench(
            CyclicBenchArgs(
                output=str(out / "cyclic" / "results.json"),
                seed=args.seed,
                datasets=list(DEMO_CYCLIC_DATASETS),
            )
        )
        timings["cyclic_minutes"] = (time.perf_counter() - start) / 60
    if "nash" in args.parts:
        from genpref.selfplay.nash import NashBenchArgs, run_nash_bench

        start = time.perf_counter()
        print("\n== part 2: the Nash experiment (GPO / SPPO vs BT baselines on intransitive games) ==")
        summary["nash"] = run_nash_bench(
            NashBenchArgs(
                output=str(out / "nash" / "results.json"),
                seed=args.seed,
                games=list(DEMO_NASH_GAMES),
                methods=list(DEMO_NASH_METHODS),
            )
        )["headline"]
        timings["nash_minutes"] = (time.perf_counter() - start) / 60
    judge = out / "gpm" / "final"
    if "rm" in args.parts:
        start = time.perf_counter()
        print("\n== part 3: BT vs GPM reward models on real preferences ==")
        summary["rm"] = run_rm_part(args, out)
        timings["rm_minutes"] = (time.perf_counter() - start) / 60
    if "selfplay" in args.parts:
        if not (judge / "genpref.json").exists():
            raise ConfigError(
                f"the self-play part needs the GPM judge from the rm part ({judge}).\n"
                "  fix: include 'rm' in --parts (it trains the judge)"
            )
        start = time.perf_counter()
        print("\n== part 4: one GPO self-play iteration of SmolLM2-135M judged by the GPM ==")
        summary["selfplay"] = run_selfplay_part(args, out, judge)
        timings["selfplay_minutes"] = (time.perf_counter() - start) / 60
    summary["timings"] = timings
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\ntimings (minutes): {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
    print(
        f"everything is under {out}/ (summary.json; plots: cyclic/*.png, nash/results.png, selfplay/selfplay.png)"
    )
    return summary
