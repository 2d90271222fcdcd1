"""Could *perfect* self-play meet the Nash target with a given design (prompts × samples, T, η)?

    python benchmarks/nash_design.py --output runs/nash_design.json

`genpref bench nash` samples K answers for each of N prompts per iteration. Each prompt plays its own
game: its samples judge and update only its own answers, and an animal that a prompt does not sample
gets no update there. This script measures SmolLM2-135M-Instruct's starting category distribution on
each of the game's prompts (``--measure_k`` samples per prompt, temperature 1, the benchmark's answer
length), then runs
perfect multiplicative weights (``genpref.cyclic.dynamics``) from those starting points with the
benchmark's sampling, for each design, and reports the average-iterate exploitability under the oracle
(mean, 10th/90th percentiles, share of seeds at most 0.05):

- ``shared``: one π for all prompts (a category sampled on any prompt moves on all of them);
- ``per prompt``: every prompt from its own π_0, updated only by its own samples.

A policy lies between the two: its prompts share parameters. A design whose per-prompt floor is above
the target cannot be rescued by a better policy update. About 1 minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import REPO_ROOT, format_table, machine_info, offline_hub, write_json

DESIGNS = [
    # (prompts, samples per prompt, iterations, η scale); GPO η = 0.6 · scale, SPPO η = 3.3 · scale
    (8, 8, 10, 1.0),  # the defaults until session 11
    (8, 8, 15, 0.75),
    (4, 16, 15, 0.75),
    (2, 32, 10, 1.0),
    (2, 32, 15, 0.75),  # the defaults in session 11
    (1, 64, 15, 0.75),  # the defaults since session 12 (prompts share parameters; see NashBenchArgs.prompts)
]


def measure_start(game, lm, tokenizer, prompts: int, k: int, seed: int) -> np.ndarray:
    """(prompts, C): each prompt's category distribution under π_0 from ``k`` samples."""
    from genpref.selfplay.nash import NashBenchArgs, NashRun

    run = NashRun(NashBenchArgs(games=[game.name], prompts=prompts, k=k, seed=seed))
    run.tokenizer, run.chat = tokenizer, game.chat
    samples = run.generate(lm, run.prompts(game), 0)
    return np.array([game.distribution([s.text for s in ss]) for ss in samples])


def floor(game, pi0s: np.ndarray, design: tuple, repeats: int) -> list[dict]:
    """Rows of perfect multiplicative weights (``genpref.cyclic.dynamics.reference``) for one design,
    GPO and SPPO, from the first ``prompts`` rows of ``pi0s``."""
    from genpref.cyclic.dynamics import reference

    n, k, iterations, scale = design
    rows = []
    for algorithm, eta in (("gpo", 0.6 * scale), ("sppo", 3.3 * scale)):
        ref = reference(
            game.matrix,
            pi0s[:n].mean(0),
            algorithm,
            eta,
            iterations,
            "optimistic",
            n,
            k,
            repeats,
            pi0s=pi0s[:n],
        )
        row = {"game": game.name, "design": f"{n} x {k}, T {iterations}", "algorithm": algorithm, "eta": eta}
        for name, prefix in (("shared", "sampled"), ("per_prompt", "per_prompt_sampled")):
            row[f"{name}_mean"] = ref[f"{prefix}_average_exploitability"]
            row[f"{name}_p10"], row[f"{name}_p90"] = ref[f"{prefix}_average_exploitability_p10_p90"]
            row[f"{name}_share_ok"] = ref[f"{prefix}_fraction_at_most_0.05"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", default="pets,pets_skewed")
    parser.add_argument("--measure_k", type=int, default=64, help="π_0 samples per prompt for its start")
    parser.add_argument("--repeats", type=int, default=200, help="seeds per design")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    offline_hub()
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from genpref.cyclic.games import GAMES
    from genpref.models.backbone import resolve_backbone
    from genpref.policy.model import load_policy

    lm, tokenizer = load_policy(resolve_backbone("smollm2-135m"))
    most = max(d[0] for d in DESIGNS)
    starts, by_prompts, rows = {}, {}, []
    for name in args.games.split(","):
        game = GAMES[name]
        key = (tuple(game.prompts[:most]), game.chat)  # games on the same prompts share π_0's start
        if key not in by_prompts:
            by_prompts[key] = measure_start(game, lm, tokenizer, most, args.measure_k, args.seed)
        starts[name] = by_prompts[key]
        for design in DESIGNS:
            rows += floor(game, starts[name], design, args.repeats)
    print(
        format_table(
            rows,
            [
                ("game", "game", ""),
                ("design", "prompts x k, T", ""),
                ("algorithm", "alg", ""),
                ("shared_mean", "shared", ".3f"),
                ("per_prompt_mean", "per prompt", ".3f"),
                ("per_prompt_p90", "p90", ".3f"),
                ("per_prompt_share_ok", "share <= 0.05", ".2f"),
            ],
        )
    )
    old = [r for r in rows if r["design"] == "8 x 8, T 10"]
    new = [r for r in rows if r["design"] == "2 x 32, T 15"]
    headline = {
        "per_prompt_floor_8x8_worst": max(r["per_prompt_mean"] for r in old),
        "per_prompt_floor_2x32_worst": max(r["per_prompt_mean"] for r in new),
    }
    write_json(
        args.output,
        {
            "headline": headline,
            "settings": vars(args),
            "starts": {g: s.round(4).tolist() for g, s in starts.items()},
            "rows": rows,
            "machine": machine_info(),
        },
    )
    print(f"headline: {headline}\nwrote {args.output}")


if __name__ == "__main__":
    main()
