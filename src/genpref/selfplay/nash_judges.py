"""The judges of ``genpref bench nash``: trained on the game's oracle comparisons, checked on held-out ones,
summarised at the category level; and the exact oracle as a reference judge."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def held_out_probs(judge, rows) -> np.ndarray:
    """(N,) P_judge(chosen ≻ rejected) of each comparison."""
    return np.array([float(judge.rank(r.prompt, [r.chosen, r.rejected]).prob_matrix[0, 1]) for r in rows])


def judge_error(judge, rows, probs: np.ndarray | None = None) -> float:
    """Mean |P_judge(chosen ≻ rejected) − label| over soft-labelled comparisons (``probs``: the judge's
    P of each row, when already computed)."""
    probs = held_out_probs(judge, rows) if probs is None else probs
    return float(np.mean(np.abs(probs - np.array([r.label for r in rows]))))


def judge_edge_error(game, rows, probs: np.ndarray) -> float:
    """The judge's worst-calibrated edge: max over pairs of categories {a, b} of |mean P̂(a ≻ b) − mean
    label(a ≻ b)| over the comparisons between an a-answer and a b-answer (oriented a before b in
    ``game.categories`` order; comparisons within one category skipped).

    The mean error per comparison hides a whole edge learnt off: a GPM with P(fish ≻ dog) 0.72 where the
    labels say 0.8 had a mean error of 0.045 (good fits: 0.02–0.03), and its game's equilibrium put 0.55
    on dog where the oracle's puts 0.44.

    Args:
        rows: N soft-labelled comparisons; probs: (N,) the judge's P(chosen ≻ rejected) of each.
    """
    order = {c: i for i, c in enumerate(game.categories)}
    gaps: dict[tuple[int, int], list[float]] = {}
    for r, p in zip(rows, probs):
        a, b = order[game.category(r.chosen)], order[game.category(r.rejected)]
        if a == b:
            continue
        gap = float(p) - r.label
        gaps.setdefault((min(a, b), max(a, b)), []).append(gap if a < b else -gap)
    return max((abs(float(np.mean(g))) for g in gaps.values()), default=0.0)


def judge_matrix(judge, game, prompt) -> dict:
    """The judge's category-level preferences: mean P and mean score over canonical answers per category."""
    from genpref.cyclic.games import response_pool

    pool = response_pool(game)
    texts, owner = [], []
    for c, category in enumerate(game.categories):
        texts += pool[category][:6]
        owner += [c] * len(pool[category][:6])
    r = judge.rank(prompt, texts)
    n = len(game.categories)
    owner_t = torch.tensor(owner)
    prob, score = np.zeros((n, n)), np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            block = (owner_t == a)[:, None] & (owner_t == b)[None, :]
            prob[a, b] = float(r.prob_matrix[block].mean())
            score[a, b] = float(r.score_matrix[block].mean())
    return {"prob": prob, "logit": score / judge.config.temperature}


class OracleJudge:
    """The game's exact preferences as a judge: ``rank`` returns P[category(a), category(b)] and its logit."""

    def __init__(self, game) -> None:
        self.game = game
        self.config = type("Config", (), {"temperature": 1.0})()

    def rank(self, prompt, texts: list[str]):
        from types import SimpleNamespace

        index = {c: i for i, c in enumerate(self.game.categories)}
        cats = torch.tensor([index[self.game.category(t)] for t in texts])
        prob = torch.tensor(self.game.matrix, dtype=torch.float64)[cats[:, None], cats[None, :]]  # (K, K)
        logit = torch.logit(prob)
        return SimpleNamespace(
            prob_matrix=prob, score_matrix=logit, score_vs_mixture=logit.mean(1), forwards=0
        )


def train_game_judges(args, game, prompts: list[str], samples0: list, out: Path) -> tuple[dict, dict]:
    """Train the GPM and BT judges a run needs on ``game_comparisons`` of the game's oracle (soft
    labels), each checked on held-out comparisons; a GPM above ``args.judge_max_error`` (mean error) or
    ``args.judge_max_edge_error`` (worst edge, :func:`judge_edge_error`) is trained again with another
    seed (up to ``args.judge_restarts`` times) and the one with the best edge kept. ``args`` is the
    bench's ``NashBenchArgs``. Returns ({"gpm"|"bt": judge}, {name: {"validation_error": [...],
    "validation_edge_error": [...], "kept_attempt": i}})."""
    from genpref.cyclic.games import game_comparisons, response_pool
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.device import default_device
    from genpref.train.rm import train_preference_model_on
    from genpref.train.rm_config import RMTrainConfig

    a = args
    if not a.judge_near_misses:
        game = replace(game, near_misses=(), held_out_near_misses=())
    extra = [s.text for ss in samples0 for s in ss]  # + π_0's off-topic answers
    pool = response_pool(game, extra=extra)
    prompts = tuple(prompts)
    unseen = response_pool(game, extra=extra, held_out=True)  # near misses never trained on, if any
    held_out = game_comparisons(game, unseen, a.judge_validation_pairs, seed=a.seed + 7777, prompts=prompts)
    judges, training = {}, {}
    needed = {
        "gpm": a.gpm_judge == "trained" and bool({"gpo", "sppo"} & set(a.methods)),
        "bt": bool({"bt_reward", "bt_dpo"} & set(a.methods)),
    }
    for name, overrides in {
        "gpm": dict(type="gpm", k=a.judge_k, l2_normalize=False, tau=1.0),
        "bt": dict(type="bt"),
    }.items():
        if not needed[name]:
            continue
        errors, edge_errors, best = [], [], None
        restarts = a.judge_restarts if name == "gpm" else 0  # BT's error is structural (it has no cycle)
        for attempt in range(restarts + 1):
            seed = a.seed + 101 * attempt
            rows = game_comparisons(game, pool, a.judge_pairs, seed=seed, prompts=prompts)
            cfg = RMTrainConfig(
                loss="soft",  # the rows carry the oracle's probability: fit it, not just its direction
                model=PreferenceModelConfig(
                    backbone=a.judge_backbone,
                    max_length=a.judge_max_length,
                    pooling="response_mean",
                    **overrides,
                ),
                optim=OptimConfig(lr=a.judge_lr, head_lr=a.judge_head_lr, warmup_ratio=0.1),
                train=TrainConfig(
                    epochs=a.judge_epochs,
                    batch_size=a.judge_batch_size,
                    finetune=a.judge_finetune,
                    seed=seed,
                    log_every=100,
                    progress=False,
                ),
                output_dir=str(out / game.name / f"judge_{name}" / f"attempt-{attempt}"),
            )
            result = train_preference_model_on(cfg, rows, None, overwrite=True)
            judge = PreferenceModel.from_pretrained(result.final_dir, device=default_device()).eval()
            probs = held_out_probs(judge, held_out)
            errors.append(judge_error(judge, held_out, probs))
            edge_errors.append(judge_edge_error(game, held_out, probs))
            if best is None or edge_errors[-1] < edge_errors[best[0]]:
                best = (attempt, judge)
            if errors[-1] <= a.judge_max_error and edge_errors[-1] <= a.judge_max_edge_error:
                break
        judges[name] = best[1]
        training[name] = {
            "validation_error": errors,
            "validation_edge_error": edge_errors,
            "kept_attempt": best[0],
        }
    return judges, training


def judge_report(judge, game, prompt) -> dict:
    """A judge's category-level matrix beside the oracle's, its mean absolute error and the equilibria of
    its own game (of P, and of the logit game that GPO's multiplicative weights play)."""
    m = judge_matrix(judge, game, prompt)
    return {
        "prob": m["prob"].round(3).tolist(),
        "mean_abs_error_vs_oracle": float(np.abs(m["prob"] - game.matrix).mean()),
        "nash_of_judge_prob": _nash_or_none(m["prob"]),
        "nash_of_judge_logit": _nash_or_none(_as_preference(m["logit"])),
    }


def _as_preference(payoff: np.ndarray) -> np.ndarray:
    """A preference matrix with the same equilibria as the zero-sum game with antisymmetric ``payoff``
    (½ + payoff rescaled into [−½, ½]; rescaling a payoff does not move its equilibria). GPO's
    multiplicative weights play the game whose payoff is the logit s, not P − ½: its equilibrium."""
    a = (payoff - payoff.T) / 2
    return 0.5 + a / (2 * np.abs(a).max() + 1e-12)


def _nash_or_none(p: np.ndarray):
    from genpref.cyclic.games import symmetric_nash

    try:
        sym = (p + (1 - p.T)) / 2  # enforce P + Pᵀ = 1 exactly (a GPM gives it up to rounding)
        return symmetric_nash(sym).round(4).tolist()
    except ValueError:
        return None
