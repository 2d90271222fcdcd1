"""Self-play square losses: SPPO (Wu et al., arXiv 2405.00675) and GPO (Zhang et al., arXiv 2410.02197 §5).

Both regress each sampled response's log-ratio against the previous policy π_t onto a target:

    ℓ(y) = ( log π_θ(y|x) − log π_t(y|x) − η · g(y) )²

This module is the one place the SPPO/GPO target and square loss are written: the self-play recipe
(``genpref.selfplay``: ``run.targets`` and ``recipe``) and offline SPPO (``genpref.losses.policy.sppo_loss``)
both call it (tests/test_losses_policy.py pins their parity).

* SPPO (2405.00675, Eq. 3.6, the loss of Algorithm 1; log Z_{π_t} approximated by η/2): g = P̂(y ≻ π_t | x) − ½,
  P̂ the mean win probability of y against the K samples of π_t.
* GPO (Eq. 5.3 of 2410.02197): g = s(y ≻ π_t | x), the GPM preference score of y against π_t's mixture.
* LN-GPO: the log-ratio is divided by the response length |y| (length-normalised).
"""

from __future__ import annotations

from torch import Tensor


def selfplay_square_loss(
    policy_logps: Tensor,
    reference_logps: Tensor,
    target: Tensor,
    eta: float,
    lengths: Tensor | None = None,
) -> Tensor:
    """(ρ − η·g)² per response, ρ = log π_θ(y|x) − log π_t(y|x) (÷ |y| when ``lengths`` is given).

    Args:
        policy_logps: (N,) summed log π_θ(y|x).
        reference_logps: (N,) summed log π_t(y|x) (recorded at generation time).
        target: (N,) g(y): P̂ − ½ for SPPO, s(y ≻ π_t) for GPO (already clipped by the caller if wanted).
        eta: η (the paper's recipe uses η = 1000 for 8B models; β = 1/η).
        lengths: (N,) response token counts for the length-normalised variant (LN-GPO), or None.
    Returns:
        (N,) per-response losses.
    """
    ratio = policy_logps - reference_logps.to(policy_logps.dtype)
    if lengths is not None:
        ratio = ratio / lengths.clamp_min(1).to(ratio.dtype)
    return (ratio - eta * target.to(ratio.dtype)) ** 2


def sppo_target(win_prob: Tensor) -> Tensor:
    """SPPO's regression target g = P̂(y ≻ π_t) − ½ ∈ [−½, ½] (2405.00675, Eq. 3.6). Shapes: any → same."""
    return win_prob - 0.5


def mean_against_samples(matrix: Tensor, include_self: bool = True) -> Tensor:
    """(K,) row means of a prompt's K×K judge matrix: each sample against π_t's empirical mixture.

    ``matrix[i, j]`` is P(y_i ≻ y_j) (SPPO: the mean is P̂(y_i ≻ π_t)) or the preference logit
    s(y_i ≻ y_j) (GPO: the mean is s(y_i ≻ π_t)). ``include_self`` keeps the diagonal term j = i (½ resp.
    0), as the papers' code does; without it the mean is over the K − 1 other samples.
    """
    k = matrix.shape[-1]
    if include_self:
        return matrix.mean(-1)
    return (matrix.sum(-1) - matrix.diagonal(dim1=-2, dim2=-1)) / (k - 1)


def selfplay_target(
    matrix: Tensor, algorithm: str, include_self: bool = True, clip: float | None = None
) -> Tensor:
    """(K,) per-sample targets g(y_i) from one prompt's K×K judge matrix (see the module docstring).

    Args:
        matrix: (K, K) win probabilities P(y_i ≻ y_j) for ``algorithm="sppo"``, preference logits
            s(y_i ≻ y_j) for ``"gpo"``.
        algorithm: ``"sppo"`` (g = P̂ − ½) or ``"gpo"`` (g = s(y ≻ π_t)).
        include_self: keep the j = i term in the mean (:func:`mean_against_samples`).
        clip: clamp g to [−clip, clip] (None: no clamp).
    """
    mean = mean_against_samples(matrix, include_self)
    if algorithm == "sppo":
        target = sppo_target(mean)
    elif algorithm == "gpo":
        target = mean
    else:
        raise ValueError(f"algorithm must be 'sppo' or 'gpo', got {algorithm!r}")
    return target if clip is None else target.clamp(-clip, clip)


def distinct_response_weights(keys: list) -> list[float]:
    """Per-sample loss weights under which each *distinct* response of a prompt counts once.

    The square loss is a regression whose minimiser does not depend on how often a response was
    sampled, but a gradient step does: with a softmax over responses, one step moves log π(y) in
    proportion to n(y)·(target − mean), the replicator dynamics, so a response sampled once moves ~1/n
    as far as multiplicative weights asks (SPPO/GPO's update, 2405.00675 Eq. 3.4). Weighting each sample
    by 1/n(y) makes the step's push on every distinct response the same; the weights of a prompt are
    rescaled to sum to its number of samples, so the loss keeps its scale (all distinct: all weights 1).

    Args:
        keys: (N,) one hashable per sample, equal exactly when two samples are the same response to the
            same prompt, e.g. ``(prompt_index, tuple(token_ids))``; the prompt is read as ``key[0]``.
    Returns:
        (N,) weights; for prompt p with n_p samples of which d_p are distinct, w = n_p / (d_p · n(y)).

    Example: one prompt, samples (a, a, a, b): n = 4, d = 2, weights (2/3, 2/3, 2/3, 2).
    """
    from collections import Counter

    multiplicity = Counter(keys)
    samples = Counter(key[0] for key in keys)
    distinct = Counter(key[0] for key in multiplicity)
    return [samples[k[0]] / (distinct[k[0]] * multiplicity[k]) for k in keys]


def judge_equivalence_classes(prob_matrix, tolerance: float = 0.05) -> list[int]:
    """Which of a prompt's K samples are one response *to the judge*: the classes of the relation
    "rows i and j of P differ by at most ``tolerance`` in every column", closed transitively.

    Two samples the judge cannot tell apart (each is as likely to beat every other sample, and they tie)
    are the same strategy of the preference game, however their texts differ ("Fish.", " fish!", "A
    fish"); ``weighting: judged_distinct`` counts each class once, as ``distinct`` counts each text once.
    Uses only the judge's matrix, so it needs no rule about the answers.

    Args:
        prob_matrix: (K, K) P(y_i ≻ y_j), any nested sequence or tensor.
        tolerance: the largest difference, in probability, between rows of one class.
    Returns:
        (K,) class ids, numbered from 0 in order of first appearance.

    Example: P rows (½, ½, .9), (½, ½, .88), (.1, .12, ½) with tolerance 0.05: samples 0 and 1 differ by
    at most 0.02, sample 2 by at least 0.4 from both: classes (0, 0, 1).
    """
    import torch

    p = torch.as_tensor(prob_matrix, dtype=torch.float64)  # (K, K)
    close = (p[:, None, :] - p[None, :, :]).abs().amax(-1) <= tolerance  # (K, K) rows i, j within tolerance
    parent = list(range(p.shape[0]))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in close.nonzero().tolist():
        parent[root(i)] = root(j)
    ids: dict[int, int] = {}
    return [ids.setdefault(root(i), len(ids)) for i in range(p.shape[0])]


def inverse_propensity_weights(reference_logps: list[float], k: int, clip: float = 10.0) -> list[float]:
    """Per-sample loss weights w ∝ min(1 / (K · π_t(y|x)), clip), rescaled to average 1.

    Unbiased version of :func:`distinct_response_weights` across prompts: a response of probability π
    is drawn K·π times per prompt on average, so weighting each draw by 1/(K·π) gives every response the
    same expected total weight whether or not, and however often, it was drawn, and one gradient step
    on a softmax moves each logit by ~its target (natural-gradient-like, Fisher ≈ diag π) instead of
    π × target (the replicator dynamics of plain sample weights). ``clip`` bounds a very unlikely
    draw's weight; long answers, whose probabilities are all tiny, all clip and so keep equal weights.

    Args:
        reference_logps: (N,) log π_t(y|x) of each sample, as sampled (temperature 1).
        k: samples per prompt.
        clip: the largest weight before rescaling.
    Returns:
        (N,) weights with mean 1.

    Example: K = 4, π_t = (0.5, 0.5, 0.25, 0.05): raw 1/(Kπ) = (0.5, 0.5, 1, 5), mean 1.75, weights
    (2/7, 2/7, 4/7, 20/7).
    """
    import math

    raw = [math.exp(min(-lp - math.log(k), math.log(clip))) for lp in reference_logps]  # no overflow
    mean = sum(raw) / len(raw)
    return [w / mean for w in raw]


def center_targets(targets: list[float], weights: list[float], groups: list) -> list[float]:
    """Targets minus their weighted mean per prompt: g̃_i = g_i − Σ_j w_j g_j / Σ_j w_j over i's prompt.

    Multiplicative weights' step, log π_{t+1}(y) − log π_t(y) = η·g(y) − log Z_t(x), is defined up to a
    constant per prompt, so shifting a prompt's targets changes nothing in the update it asks for. It does
    change one gradient step of the square loss: at ρ = 0 the step is −2η Σ_i w_i g_i ∇ log π(y_i), and on a
    softmax ∇ log π(y) = e_y − π, so any Σ_i w_i g_i ≠ 0 adds a push along π that raises every response
    in proportion to its probability, the most likely one most ("the rich get richer"). Weights other than
    1 (``distinct``, ``inverse_propensity``) and optimistic targets (2 g_t − g_{t−1}) make that sum non-zero;
    after centring it is 0 and the step moves each sampled response by its own w·g̃ only. Regressing
    centred quantities is the K-sample form of REBEL's relative regression (Gao et al., arXiv 2404.16767,
    Eq. 3: differences of log-ratios onto differences of rewards), which removes log Z the same way.

    Args:
        targets: (N,) g per sample.
        weights: (N,) loss weights (all 1: the plain mean).
        groups: (N,) the prompt of each sample (any hashable).
    Returns:
        (N,) centred targets; Σ_{i in a prompt} w_i g̃_i = 0 for every prompt.

    Example: one prompt, g = (0.3, −0.1, −0.1), w = (2, 1, 1): weighted mean 0.1, g̃ = (0.2, −0.2, −0.2).
    """
    total: dict = {}
    mass: dict = {}
    for g, w, key in zip(targets, weights, groups):
        total[key] = total.get(key, 0.0) + w * g
        mass[key] = mass.get(key, 0.0) + w
    return [g - total[key] / mass[key] if mass[key] else g for g, key in zip(targets, groups)]


def selfplay_weights(
    weighting: str,
    keys: list,
    reference_logps: list[float],
    k: int,
    clip: float = 10.0,
    judge_classes: list[int] | None = None,
) -> list[float]:
    """(N,) loss weights by ``weighting``: ``"sample"`` (all 1), ``"distinct"``
    (:func:`distinct_response_weights` of ``keys``), ``"judged_distinct"`` (the same with each sample's
    :func:`judge_equivalence_classes` id, ``judge_classes``, in place of its text) or
    ``"inverse_propensity"`` (:func:`inverse_propensity_weights` of ``reference_logps``)."""
    if weighting == "sample":
        return [1.0] * len(keys)
    if weighting == "distinct":
        return distinct_response_weights(keys)
    if weighting == "judged_distinct":
        if judge_classes is None or len(judge_classes) != len(keys):
            raise ValueError("weighting 'judged_distinct' needs one judge class per sample")
        return distinct_response_weights([(key[0], c) for key, c in zip(keys, judge_classes)])
    if weighting == "inverse_propensity":
        return inverse_propensity_weights(reference_logps, k, clip)
    raise ValueError(
        f"weighting must be 'sample', 'distinct', 'judged_distinct' or 'inverse_propensity', got {weighting!r}"
    )
