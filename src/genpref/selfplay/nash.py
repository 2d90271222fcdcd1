"""``genpref bench nash``: does self-play find the Nash equilibrium of an intransitive preference game?

SPPO (arXiv 2405.00675) and GPO (arXiv 2410.02197 §5) are multiplicative-weights updates on the
preference game: π_{t+1}(y) ∝ π_t(y) exp(η g_t(y)), with g = P(y ≻ π_t) − ½ (SPPO) or the GPM score
s(y ≻ π_t) (GPO). Theory: the *average* iterate approaches the game's Nash equilibrium; the last iterate
may orbit it. A Bradley-Terry reward cannot represent a cyclic game at all. This benchmark checks that on
games whose answer is known (:mod:`genpref.cyclic.games`), with the real policy (SmolLM2-135M-Instruct)
and the real self-play pieces (sampling with recorded log π_t, a trained judge, the square-loss recipe on
the shared training loop):

1. π_0 answers the game's prompts (K samples each); its category distribution is measured by the
   game's text rule.
2. Judges are *trained* by genpref on soft-labelled comparisons built from the game's oracle
   (:func:`~genpref.cyclic.games.game_comparisons` over templated answers and π_0's answers that name no
   option, soft cross-entropy): a GPM
   (k = 2, unnormalised, τ = 1, as the cyclic benchmark found best) and a BT model on the same rows;
   their category-level matrices are reported beside the oracle's.
3. From the same π_0 and the same sampling seeds, for T iterations each: ``gpo`` and ``sppo`` with the
   GPM judge; ``bt_reward``, the same loop with the BT judge's reward (r(y) − mean r) as the target;
   ``bt_dpo``, iterative DPO on each prompt's best vs worst sample by BT reward (reference π_t).
4. Per iteration: the category distribution, its total-variation distance to the exact Nash
   equilibrium and its exploitability max_c P(c ≻ π) − ½ under the *oracle*, for the last iterate and
   for the average of the iterates π_1..π_T.

``--update_rule optimistic`` adds the known remedy for last-iterate cycling, optimistic multiplicative
weights: the target becomes 2 g_t(y) − g_{t−1}(y), with g_{t−1}(y) judged against π_{t−1}'s samples.

Departures from a full-scale run, on purpose: a policy's category distribution is computed from its
probabilities over its two-token answers (``--measure exact``, :mod:`genpref.selfplay.nash_measure`;
averaged over the game's prompt paraphrases), not counted on samples, so no measurement noise enters
the exploitability (``--measure samples`` counts the iteration's N·K samples instead); η is chosen per algorithm from its target scale (GPO's logits are
~5× SPPO's P − ½ near ½); each iteration takes one full-batch SGD step from the regression's start, so
the realised step is a policy-gradient step in the direction the targets ask for, scaled by η (AdamW's
normalised first step would ignore η), not the regression's exact minimiser. Every gpo/sppo run is
compared with perfect multiplicative weights (:mod:`genpref.cyclic.dynamics`): the η of the exact step
closest to each measured one, and the exact and sampled runs from the same π_0 with the same η, T, N and
K (the sampled run is the floor that sampling noise sets).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from genpref.errors import ConfigError
from genpref.selfplay.nash_args import METHODS, NashBenchArgs
from genpref.selfplay.nash_judges import OracleJudge, judge_report, train_game_judges

__all__ = ["METHODS", "NashBenchArgs", "NashRun", "headline", "run_nash_bench", "summarise"]

log = logging.getLogger("genpref")

# ----------------------------------------------------------------------------- measurement


def summarise(game, distributions: list[np.ndarray]) -> dict:
    """Per-iterate and average-iterate distance to Nash and exploitability (oracle), π_0 first."""
    nash = game.nash
    tv = [0.5 * float(np.abs(d - nash).sum()) for d in distributions]
    expl = [game.exploitability(d) for d in distributions]
    later = distributions[1:] or distributions
    average = np.mean(later, axis=0)
    return {
        "distributions": [d.round(4).tolist() for d in distributions],
        "tv_to_nash": tv,
        "exploitability": expl,
        "last_exploitability": expl[-1],
        "average_distribution": average.round(4).tolist(),
        "average_exploitability": game.exploitability(average),
        "average_tv_to_nash": 0.5 * float(np.abs(average - nash).sum()),
    }


# ----------------------------------------------------------------------------- the experiment


class NashRun:
    """One benchmark run: the policy, its samples, the judges and every method's trajectory."""

    def __init__(self, args: NashBenchArgs) -> None:
        from genpref.cyclic.games import GAMES

        unknown = [g for g in args.games if g not in GAMES] + [m for m in args.methods if m not in METHODS]
        if unknown:
            raise ConfigError(
                f"unknown game or method: {', '.join(unknown)}.\n"
                f"  fix: games from {', '.join(GAMES)}; methods from {', '.join(METHODS)}"
            )
        if args.iterations < 1 or args.k < 2 or args.prompts < 1:
            raise ConfigError("iterations >= 1, k >= 2 and prompts >= 1 are required")
        if args.measure == "exact" and (args.max_new_tokens > 2 or args.temperature != 1.0):
            raise ConfigError(
                f"--measure exact reads π off two-token answers at temperature 1; got max_new_tokens "
                f"{args.max_new_tokens}, temperature {args.temperature}.\n"
                "  fix: --max_new_tokens 2 --temperature 1.0, or --measure samples"
            )
        self.args, self.games = args, [GAMES[g] for g in args.games]
        self.out = Path(args.output).parent
        self.chat = False  # the current game's prompt view (set per game in run)
        self._samples: dict = {}

    # -- sampling ---------------------------------------------------------------------------------
    def generate(self, lm, prompts: list[str], t: int) -> list:
        """K samples per prompt from ``lm`` (iteration t's seed, the same for every method)."""
        from genpref.selfplay.generate import SamplingConfig, TransformersGenerator

        a = self.args
        sampling = SamplingConfig(
            temperature=a.temperature,
            top_p=1.0,
            max_new_tokens=a.max_new_tokens,
            batch_size=max(64, a.k),  # one prompt's K rows in one call: its prefill is computed once
            keep_logits=a.measure == "exact",
        )
        generator = TransformersGenerator(lm, self.tokenizer, sampling)
        return generator.generate(self.policy_view(prompts), a.k, seed=a.seed + 7919 * t, progress=False)

    def policy_view(self, prompts: list[str]) -> list:
        """The prompts as the policy sees them: a user turn, or plain text to continue (``game.chat``)."""
        from genpref.selfplay.prompts import as_user_turn

        return [as_user_turn(p) for p in prompts] if self.chat else list(prompts)

    def measure(self, game, lm, prompts: list[str], samples: list) -> tuple[np.ndarray, float]:
        """(N, C) each prompt's category distribution (``args.measure``) and the least probability mass
        resolved from exact text on any prompt (1.0 when measured by samples)."""
        from genpref.selfplay.generate import prompt_ids
        from genpref.selfplay.nash_measure import from_samples

        if self.args.measure == "samples":
            return np.stack([game.distribution([s.text for s in ss]) for ss in samples]), 1.0
        ids = [prompt_ids(self.tokenizer, p) for p in self.policy_view(prompts)]
        measured = from_samples(
            self.tokenizer, game, samples, lm, ids, max_new_tokens=self.args.max_new_tokens
        )
        return np.stack([m.distribution for m in measured]), min(m.resolved for m in measured)

    # -- judges -----------------------------------------------------------------------------------
    def prompts(self, game) -> list[str]:
        return list(game.prompts[: self.args.prompts])

    # -- one iteration's training data ------------------------------------------------------------
    def matrices(self, judge, prompt, texts: list[str]):
        """(K, K) P and logit matrices of ``texts``. Each distinct text is judged once (one-token answers
        repeat: 256 samples hold a handful of texts), its row and column copied to its repeats."""
        position = {t: i for i, t in enumerate(dict.fromkeys(texts))}
        if len(position) == 1:  # every sample is one answer: it ties itself
            tie = torch.full((len(texts),) * 2, 0.5, dtype=torch.float64)
            return tie, torch.zeros_like(tie)
        index = torch.tensor([position[t] for t in texts])  # (K,) each sample's distinct text
        r = judge.rank(prompt, list(position))
        prob, logit = r.prob_matrix.double(), r.score_matrix.double() / judge.config.temperature
        return prob[index][:, index], logit[index][:, index]

    def targets(
        self, method: str, judge, prompt, texts: list[str], previous: list[str] | None
    ) -> tuple[list[float], list]:
        """g_t(y_i) per sample, by ``genpref.selfplay.run.targets`` (SPPO: P̂ − ½; GPO and bt_reward: the
        mean logit); optimistic: 2 g_t − g_{t−1}, g_{t−1} against ``previous`` (π_{t−1}'s samples), which are
        judged only then. Also the samples' (K, K) P matrix."""
        from genpref.selfplay.run import targets

        k = len(texts)
        optimistic = previous is not None and self.args.update_rule == "optimistic"
        prob, logit = self.matrices(judge, prompt, texts + (previous if optimistic else []))
        cfg = self.selfplay_config(method, eta=1.0)  # η does not enter the target

        def mean_against(cols: slice) -> torch.Tensor:
            block = {"prob_matrix": prob[:k, cols].tolist(), "logit_matrix": logit[:k, cols].tolist()}
            return torch.tensor(targets(cfg, block), dtype=torch.float64)  # (K,)

        g = mean_against(slice(0, k))
        if optimistic:
            g = 2 * g - mean_against(slice(k, None))
        return g.tolist(), prob[:k, :k].tolist()

    def selfplay_step(self, method: str, lm, judge, prompts, samples, previous, folder: Path) -> dict:
        from genpref.data.encode import Encoded
        from genpref.selfplay.generate import prompt_ids
        from genpref.selfplay.recipe import SelfPlayItem
        from genpref.selfplay.run import train_on_items, weights_and_targets
        from genpref.train.loop import start_run
        from genpref.train.run_dir import claim_run_dir

        eta = self.eta(method)
        cfg = self.selfplay_config(method, eta)
        items, drawn, prob_matrices = [], [], []
        for i, (prompt, ss) in enumerate(zip(prompts, samples)):
            prev = [s.text for s in previous[i]] if previous is not None else None
            g, prob = self.targets(method, judge, prompt, [s.text for s in ss], prev)
            prob_matrices.append(prob)
            ids = prompt_ids(self.tokenizer, self.policy_view([prompt])[0])
            for j, (s, target) in enumerate(zip(ss, g)):
                if s.token_ids:
                    items.append(SelfPlayItem(Encoded(ids + s.token_ids, len(ids), False), s.logp, target, i))
                    drawn.append((i, s.token_ids, s.logp, j))
        weights, targets = weights_and_targets(cfg, drawn, prob_matrices, [it.target for it in items])
        for it, w, g in zip(items, weights, targets):
            it.weight, it.target = w, g
        with claim_run_dir(folder, resume=False, overwrite=True):
            acc, _ = start_run({"method": method, "eta": eta}, cfg.train, folder, resume=False)
            result = train_on_items(cfg, acc, lm, self.tokenizer, items, folder, None, save_final=False)
        target_abs_mean = float(np.mean([abs(it.target) for it in items]))
        return {"steps": result.steps, "eta": eta, "target_abs_mean": target_abs_mean, **result.solver}

    def eta(self, method: str) -> float:
        """The self-play loop's η for ``method`` (gpo, sppo or bt_reward)."""
        a = self.args
        return {"gpo": a.eta_gpo, "sppo": a.eta_sppo, "bt_reward": a.eta_bt}[method]

    def selfplay_config(self, method: str, eta: float):
        from genpref.selfplay.config import SelfPlayConfig
        from genpref.train.config import OptimConfig, TrainConfig

        a = self.args
        return SelfPlayConfig(
            algorithm="sppo" if method == "sppo" else "gpo",
            eta=eta,
            k=a.k,
            weighting=a.weighting,
            weight_clip=a.weight_clip,
            center_targets=a.center_targets,
            judge_tolerance=a.judge_tolerance,
            solver=a.solver,
            gauss_newton_damping=a.gauss_newton_damping,
            gauss_newton_steps=a.gauss_newton_steps,
            seed=a.seed,
            optim=OptimConfig(
                name=a.optimizer,
                lr=a.lr,
                warmup_ratio=0.0,
                scheduler="constant",
                max_grad_norm=a.max_grad_norm,
            ),
            train=TrainConfig(
                epochs=a.epochs, batch_size=a.batch_size, seed=a.seed, progress=False, log_every=1000
            ),
        )

    def dpo_step(self, lm, judge, prompts, samples, folder: Path) -> dict:
        """Iterative DPO: each prompt's best vs worst sample by the BT reward, reference π_t."""
        from genpref.data.encode import Encoded
        from genpref.policy.logprobs import PolicyLogps
        from genpref.selfplay.generate import prompt_ids
        from genpref.train.config import OptimConfig, TrainConfig
        from genpref.train.loop import run_loop, start_run
        from genpref.train.po import PairItem, PreferenceOptimizationRecipe
        from genpref.train.po_config import EngineConfig, LossConfig, POTrainConfig
        from genpref.train.run_dir import claim_run_dir

        a = self.args
        items = []
        for prompt, ss in zip(prompts, samples):
            _, logit = self.matrices(judge, prompt, [s.text for s in ss])
            reward = logit.mean(dim=1)  # (K,) r_i − mean r (BT: logit_ij = r_i − r_j)
            best, worst = int(reward.argmax()), int(reward.argmin())
            if reward[best] <= reward[worst] or not ss[best].token_ids or not ss[worst].token_ids:
                continue  # all samples judged equal: no pair
            ids = prompt_ids(self.tokenizer, self.policy_view([prompt])[0])
            chosen, rejected = (Encoded(ids + ss[j].token_ids, len(ids), False) for j in (best, worst))
            items.append(PairItem(chosen, rejected, 1.0, ss[best].logp, ss[worst].logp))
        if not items:
            return {"steps": 0, "pairs": 0}
        cfg = POTrainConfig(
            loss=LossConfig(name="dpo", beta=a.dpo_beta),
            engine=EngineConfig(packing=False),
            optim=OptimConfig(lr=a.dpo_lr, warmup_ratio=0.0, scheduler="constant"),
            train=TrainConfig(
                epochs=a.epochs,
                batch_size=max(1, a.batch_size // 2),
                seed=a.seed,
                progress=False,
                log_every=1000,
            ),
        )
        recipe = PreferenceOptimizationRecipe(cfg, items, [], self.tokenizer)
        with claim_run_dir(folder, resume=False, overwrite=True):
            acc, _ = start_run({"method": "bt_dpo"}, cfg.train, folder, resume=False)
            result = run_loop(
                acc,
                PolicyLogps(lm, 1024),
                recipe,
                len(items),
                cfg.train,
                cfg.optim,
                folder,
                None,
                desc="bt_dpo",
                save_final=False,
            )
        return {"steps": result.steps, "pairs": len(items)}

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> dict:
        from genpref.models.backbone import resolve_backbone
        from genpref.policy.model import load_policy
        from genpref.train.device import default_device

        a, start = self.args, time.perf_counter()
        torch.manual_seed(a.seed)
        lm0, self.tokenizer = load_policy(resolve_backbone(a.policy))
        lm0.to(default_device())
        results: dict = {"config": asdict(a), "games": {}}
        for game in self.games:
            prompts, self.chat = self.prompts(game), game.chat
            key = tuple(prompts)
            if key not in self._samples:  # games on the same prompts share π_0's samples
                self._samples[key] = self.generate(lm0, prompts, 0)
            samples0 = self._samples[key]
            game_start = time.perf_counter()
            judges, training = train_game_judges(a, game, self.prompts(game), samples0, self.out)
            entry = {
                "nash": game.nash.round(4).tolist(),
                "categories": list(game.categories),
                "oracle": game.matrix.tolist(),
                "judge_seconds": time.perf_counter() - game_start,
                "judges": {},
                "methods": {},
            }
            for name, judge in judges.items():
                entry["judges"][name] = {**training[name], **judge_report(judge, game, prompts[0])}
            print(f"\n== {game.name}: Nash {np.round(game.nash, 3).tolist()} over {list(game.categories)}")
            for method in a.methods:
                entry["methods"][method] = self.run_method(game, method, lm0, judges, prompts, samples0)
            results["games"][game.name] = entry
        results["minutes"] = (time.perf_counter() - start) / 60
        results["headline"] = headline(results)
        return results

    def run_method(self, game, method: str, lm0, judges: dict, prompts, samples0) -> dict:
        a, start = self.args, time.perf_counter()
        lm = copy.deepcopy(lm0)
        if method in ("gpo", "sppo") and a.gpm_judge == "oracle":
            judge = OracleJudge(game)
        else:
            judge = judges["gpm" if method in ("gpo", "sppo") else "bt"]
        texts = lambda samples: [s.text for ss in samples for s in ss]  # noqa: E731
        per_prompt, resolved = self.measure(game, lm, prompts, samples0)  # (N, C) π_0 on each prompt
        distributions, steps, by_prompt = [per_prompt.mean(axis=0)], [], [per_prompt.round(4).tolist()]
        by_samples, least_resolved = [game.distribution(texts(samples0))], [resolved]
        samples, previous = samples0, None
        for t in range(a.iterations):
            folder = self.out / game.name / method / f"iter-{t}"
            if method == "bt_dpo":
                steps.append(self.dpo_step(lm, judge, prompts, samples, folder))
            else:
                steps.append(self.selfplay_step(method, lm, judge, prompts, samples, previous, folder))
            previous, samples = samples, self.generate(lm, prompts, t + 1)
            measured, resolved = self.measure(game, lm, prompts, samples)
            distributions.append(measured.mean(axis=0))
            by_prompt.append(measured.round(4).tolist())
            by_samples.append(game.distribution(texts(samples)))
            least_resolved.append(resolved)
        summary = summarise(game, distributions)
        summary.update(
            steps=steps,
            seconds=time.perf_counter() - start,
            sample_distributions=[d.round(4).tolist() for d in by_samples],
            prompt_distributions=by_prompt,
            resolved_mass=least_resolved,
        )
        if method in ("gpo", "sppo"):
            summary.update(self.against_exact_dynamics(game, method, distributions, per_prompt))
        if "perfect_mwu" in summary:
            ref = summary["perfect_mwu"]
            print(
                f"{'':<10} perfect multiplicative weights, same η, T and samples: average "
                f"{ref['sampled_average_exploitability']:.3f} (exact {ref['exact_average_exploitability']:.3f}); "
                f"prompts on their own {ref['per_prompt_sampled_average_exploitability']:.3f} "
                f"(exact {ref['per_prompt_exact_average_exploitability']:.3f}); "
                f"realised η per iteration {np.round(summary['effective_eta'], 2).tolist()}"
            )
        print(
            f"{method:<10} exploitability: π_0 {summary['exploitability'][0]:.3f}, last {summary['last_exploitability']:.3f}, "
            f"average {summary['average_exploitability']:.3f}; average π {summary['average_distribution']} "
            f"({summary['seconds']:.0f} s)"
        )
        del lm
        return summary

    def against_exact_dynamics(
        self, game, method: str, distributions: list[np.ndarray], per_prompt: np.ndarray
    ) -> dict:
        """How the trained policy compares with perfect multiplicative weights (``genpref.cyclic.dynamics``):
        per iteration, the η of the exact step closest to the measured one (under the oracle's payoff),
        and the exact and sampled runs from the same measured π_0 with the same η, T and sample sizes,
        with one π for all prompts and with every prompt on its own from its measured π_0 (``per_prompt``,
        (N, C))."""
        from genpref.cyclic.dynamics import effective_eta, payoff, reference, update_direction

        a = self.args
        eta = self.eta(method)
        m = payoff(game.matrix, method)
        realised, previous = [], None
        for now, after in zip(distributions[:-1], distributions[1:]):
            g = m @ now
            realised.append(effective_eta(now, after, update_direction(g, previous, a.update_rule)))
            previous = g
        ref = reference(
            game.matrix,
            distributions[0],
            method,
            eta,
            a.iterations,
            a.update_rule,
            a.prompts,
            a.k,
            pi0s=per_prompt,
            measure_by_samples=a.measure == "samples",
        )
        return {"effective_eta": realised, "perfect_mwu": ref}


def headline(results: dict) -> dict:
    """Average-iterate exploitability on the *worse* game for GPO and SPPO; for BT, the better of its two
    baselines on each game, then the worse game (the most favourable reading for BT)."""
    games = results["games"].values()

    def worst(method: str):
        values = [g["methods"][method]["average_exploitability"] for g in games if method in g["methods"]]
        return max(values) if values else None

    bt = [
        min(g["methods"][m]["average_exploitability"] for m in ("bt_reward", "bt_dpo") if m in g["methods"])
        for g in games
        if any(m in g["methods"] for m in ("bt_reward", "bt_dpo"))
    ]
    return {
        "gpo_exploitability": worst("gpo"),
        "sppo_exploitability": worst("sppo"),
        "bt_exploitability": max(bt) if bt else None,
        "minutes": results["minutes"],
    }


def run_nash_bench(args: NashBenchArgs) -> dict:
    """Run the benchmark; write the results JSON and the simplex plot; print the headline."""
    from genpref.selfplay.nash_plots import plot_simplex

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = NashRun(args).run()
    results["plot"] = str(plot_simplex(results, out.with_suffix(".png")))
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nheadline: {json.dumps(results['headline'])}")
    print(f"results: {out}; plot: {results['plot']}")
    return results
