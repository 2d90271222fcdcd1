"""Self-play as multiplicative weights on a category game: the exact and the sampled dynamics.

``genpref bench nash`` trains a real policy; this module is its yardstick. On a preference game with C
categories (:mod:`genpref.cyclic.games`), SPPO (arXiv 2405.00675) and GPO (arXiv 2410.02197 §5) are
multiplicative-weights updates of the category distribution π:

    π_{t+1}(c) ∝ π_t(c) · exp(η · u_t(c)),

with u_t = g_t (``mwu``, the published update) or u_t = 2 g_t − g_{t−1} (``optimistic``), and
g_t(c) = Σ_j π_t(j) M[c, j], where M = P − ½ for SPPO (g = P(c ≻ π_t) − ½) and M = logit P for GPO
(the GPM score s(c ≻ π_t) of a judge that holds the game exactly).

:func:`simulate` runs these dynamics either exactly (expectations) or *sampled* as the benchmark
samples: each iteration draws K categories for each of N prompts, g of a sample is its mean against its
own prompt's K samples (including itself, as ``genpref.losses.selfplay.mean_against_samples``), a
category that was not sampled gets no update, and each iterate is measured on N·K fresh draws. The
sampled run is what a policy that followed multiplicative weights perfectly would score in the
benchmark: the floor that sampling noise alone sets.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from genpref.cyclic.games import exploitability


def payoff(p: np.ndarray, algorithm: Literal["sppo", "gpo"]) -> np.ndarray:
    """(C, C) M[c, j]: SPPO P − ½, GPO logit P = log(P / (1 − P)) (P clipped to [1e-6, 1 − 1e-6])."""
    p = np.asarray(p, dtype=float)
    if algorithm == "sppo":
        return p - 0.5
    if algorithm == "gpo":
        q = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(q / (1 - q))
    raise ValueError(f"algorithm must be 'sppo' or 'gpo', got {algorithm!r}")


def mwu_step(pi: np.ndarray, u: np.ndarray, eta: float) -> np.ndarray:
    """π ∝ π · exp(η u), computed stably. Shapes: (C,), (C,) → (C,)."""
    logits = np.log(np.clip(pi, 1e-300, None)) + eta * u
    w = np.exp(logits - logits.max())
    return w / w.sum()


def update_direction(g: np.ndarray, previous: np.ndarray | None, update_rule: str) -> np.ndarray:
    """u_t: g_t (``mwu``), or 2 g_t − g_{t−1} (``optimistic``; g_t on the first step). Shapes: (C,) → (C,)."""
    return 2 * g - previous if (update_rule == "optimistic" and previous is not None) else g


def sampled_targets(
    m: np.ndarray, pi: np.ndarray, prompts: int, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Category-level g estimated the benchmark's way, and which categories were sampled.

    Each of ``prompts`` prompts draws ``k`` categories from π; a sample's g is the mean of M against
    its own prompt's k samples (itself included); a category's g is the mean over its samples.
    Returns (g (C,), sampled (C,) bool); g is 0 where a category was not sampled.
    """
    c = len(pi)
    total, count = np.zeros(c), np.zeros(c)
    for _ in range(prompts):
        cats = rng.choice(c, size=k, p=pi)
        g = m[np.ix_(cats, cats)].mean(axis=1)  # (k,)
        np.add.at(total, cats, g)
        np.add.at(count, cats, 1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0), count > 0


def simulate(
    p: np.ndarray,
    pi0: np.ndarray,
    algorithm: Literal["sppo", "gpo"],
    eta: float,
    iterations: int,
    update_rule: Literal["mwu", "optimistic"] = "mwu",
    prompts: int | None = None,
    k: int | None = None,
    seed: int = 0,
    measure_by_samples: bool = True,
) -> dict:
    """Multiplicative weights from π_0 for ``iterations`` steps on the game with preference matrix ``p``.

    Exact when ``prompts``/``k`` are None; otherwise sampled as described in the module docstring
    (targets from N·K samples, every iterate measured on N·K fresh draws, or exactly with
    ``measure_by_samples=False``, as the benchmark measures its policy by default).

    Returns ``{"distributions": [π_0, …, π_T] (measured when sampled), "exploitability": per iterate,
    "average_exploitability": of the mean of π_1..π_T, "last_exploitability"}``.
    """
    m = payoff(p, algorithm)
    rng = np.random.default_rng(seed)
    sampled = prompts is not None and k is not None
    pi = np.asarray(pi0, dtype=float) / np.sum(pi0)
    measured, previous = [pi], None
    for _ in range(iterations):
        if sampled:
            g, seen = sampled_targets(m, pi, prompts, k, rng)
        else:
            g, seen = m @ pi, np.ones(len(pi), dtype=bool)
        u, previous = update_direction(g, previous, update_rule), g
        pi = mwu_step(pi, np.where(seen, u, 0.0), eta)
        draw = sampled and measure_by_samples
        measured.append(rng.multinomial(prompts * k, pi) / (prompts * k) if draw else pi)
    return _trajectory(p, measured)


def _trajectory(p: np.ndarray, measured: list[np.ndarray]) -> dict:
    """A run's result from its iterates π_0..π_T: each one's exploitability, the last one's, and that of
    the average of π_1..π_T."""
    expl = [exploitability(p, d) for d in measured]
    return {
        "distributions": [np.round(d, 4).tolist() for d in measured],
        "exploitability": expl,
        "last_exploitability": expl[-1],
        "average_exploitability": exploitability(p, np.mean(measured[1:], axis=0)),
    }


def simulate_per_prompt(
    p: np.ndarray,
    pi0s: np.ndarray,
    algorithm: Literal["sppo", "gpo"],
    eta: float,
    iterations: int,
    update_rule: Literal["mwu", "optimistic"] = "mwu",
    k: int | None = None,
    seed: int = 0,
    measure_by_samples: bool = True,
) -> dict:
    """Multiplicative weights run *separately on every prompt*, each from its own π_0(·|x).

    :func:`simulate` gives all prompts one shared π (a category sampled on any prompt is updated on all
    of them). A policy's prompts need not move together: each prompt's samples judge and update only
    that prompt's distribution, and a category a prompt did not sample gets no update there, so a
    prompt whose K samples are all one category is frozen. This is the benchmark's sampling with
    independent prompts: with ``k`` samples per prompt (``k=None``: exact expectations per prompt),
    g of a sample is its mean against its own prompt's k samples, and every iterate's pooled
    distribution (the mean over prompts) is measured on N·k fresh draws (exactly with
    ``measure_by_samples=False``).

    Args:
        pi0s: (N, C) each prompt's starting category distribution (rows sum to 1).
    Returns:
        as :func:`simulate`; ``distributions`` are the pooled (measured) ones.
    """
    m = payoff(p, algorithm)
    rng = np.random.default_rng(seed)
    pis = np.asarray(pi0s, dtype=float)
    pis = pis / pis.sum(axis=1, keepdims=True)  # (N, C)
    n, c = pis.shape
    previous: list[np.ndarray | None] = [None] * n
    measured = [pis.mean(axis=0)]
    for _ in range(iterations):
        for i in range(n):
            if k is None:
                g, seen = m @ pis[i], np.ones(c, dtype=bool)
            else:
                g, seen = sampled_targets(m, pis[i], 1, k, rng)
            u, previous[i] = update_direction(g, previous[i], update_rule), g
            pis[i] = mwu_step(pis[i], np.where(seen, u, 0.0), eta)
        pooled = pis.mean(axis=0)
        draw = k is not None and measure_by_samples
        measured.append(rng.multinomial(n * k, pooled) / (n * k) if draw else pooled)
    return _trajectory(p, measured)


def reference(
    p: np.ndarray,
    pi0: np.ndarray,
    algorithm: Literal["sppo", "gpo"],
    eta: float,
    iterations: int,
    update_rule: Literal["mwu", "optimistic"],
    prompts: int,
    k: int,
    repeats: int = 200,
    seed: int = 0,
    pi0s: np.ndarray | None = None,
    measure_by_samples: bool = True,
) -> dict:
    """What perfect multiplicative weights would score in the benchmark from the measured π_0: the exact
    run, and the sampled run's average-iterate exploitability over ``repeats`` seeds (mean, the
    10th/90th percentiles and the share of seeds at most 0.05), with one π shared by all prompts
    (:func:`simulate`).

    With ``pi0s`` ((N, C), each prompt's measured π_0), also the same figures for prompts that move
    independently (:func:`simulate_per_prompt`), under ``per_prompt_*`` keys: the floor for a policy
    whose prompts do not share what they learn. ``measure_by_samples``: each sampled run's iterates are
    measured on N·K draws, as a policy measured on its samples would be (false: exactly)."""
    exact = simulate(p, pi0, algorithm, eta, iterations, update_rule)
    out = {
        "exact_average_exploitability": exact["average_exploitability"],
        "exact_last_exploitability": exact["last_exploitability"],
        **_over_seeds(
            "sampled",
            lambda s: simulate(
                p, pi0, algorithm, eta, iterations, update_rule, prompts, k, s, measure_by_samples
            ),
            repeats,
            seed,
        ),
    }
    if pi0s is not None:
        exact = simulate_per_prompt(p, pi0s, algorithm, eta, iterations, update_rule)
        out["per_prompt_exact_average_exploitability"] = exact["average_exploitability"]
        out.update(
            _over_seeds(
                "per_prompt_sampled",
                lambda s: simulate_per_prompt(
                    p, pi0s, algorithm, eta, iterations, update_rule, k, s, measure_by_samples
                ),
                repeats,
                seed,
            )
        )
    return out


def _over_seeds(name: str, run, repeats: int, seed: int) -> dict:
    """``run(seed)``'s average-iterate exploitability for seeds seed..seed + repeats − 1: under
    ``{name}_average_exploitability`` the mean, ``…_p10_p90`` the 10th and 90th percentiles, and
    ``{name}_fraction_at_most_0.05`` the share of seeds at most 0.05."""
    runs = np.array([run(seed + r)["average_exploitability"] for r in range(repeats)])
    key = f"{name}_average_exploitability"
    return {
        key: float(runs.mean()),
        f"{key}_p10_p90": [float(np.percentile(runs, q)) for q in (10, 90)],
        f"{name}_fraction_at_most_0.05": float((runs <= 0.05).mean()),
    }


def effective_eta(
    pi_t: np.ndarray, pi_next: np.ndarray, u: np.ndarray, grid: np.ndarray | None = None
) -> float:
    """The η whose exact step π_t ∝ π_t · exp(η u) lands closest (total variation) to the measured
    π_{t+1}: how large a step the trained policy actually took in the direction multiplicative weights
    asked for (``u``: the iteration's category-level update, e.g. g_t or 2 g_t − g_{t−1})."""
    grid = np.linspace(0.0, 10.0, 401) if grid is None else grid
    pi_t, pi_next = np.asarray(pi_t, dtype=float), np.asarray(pi_next, dtype=float)
    distance = [0.5 * np.abs(mwu_step(pi_t, u, eta) - pi_next).sum() for eta in grid]
    return float(grid[int(np.argmin(distance))])
