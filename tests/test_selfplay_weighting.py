"""``weighting: distinct``: each distinct response of a prompt counts once in the self-play regression.

Hand values of the weights, their invariants, the property they exist for (on a tabular softmax policy one
gradient step then moves every sampled response by its target, not by target × sample count), and the
recipe applying them.
"""

from __future__ import annotations

import pytest
import torch

from genpref.losses.selfplay import distinct_response_weights, selfplay_square_loss


def test_hand_values():
    # prompt 0: a a a b (n 4, d 2): a → 4/(2·3), b → 4/(2·1); prompt 1: c d all distinct → 1
    keys = [(0, "a"), (0, "a"), (0, "a"), (0, "b"), (1, "c"), (1, "d")]
    assert distinct_response_weights(keys) == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0, 1.0, 1.0])
    # the same text under another prompt is another response
    assert distinct_response_weights([(0, "a"), (1, "a"), (1, "a")]) == pytest.approx([1.0, 1.0, 1.0])


def test_invariants():
    g = torch.Generator().manual_seed(0)
    keys = [
        (int(p), int(t))
        for p, t in zip(torch.randint(0, 3, (40,), generator=g), torch.randint(0, 4, (40,), generator=g))
    ]
    w = distinct_response_weights(keys)
    for p in {k[0] for k in keys}:
        idx = [i for i, k in enumerate(keys) if k[0] == p]
        assert sum(w[i] for i in idx) == pytest.approx(len(idx))  # a prompt keeps its share of the loss
        per_response = {}
        for i in idx:
            per_response[keys[i]] = per_response.get(keys[i], 0.0) + w[i]
        assert len(set(round(v, 9) for v in per_response.values())) == 1  # each response counts the same
    assert distinct_response_weights([(0, i) for i in range(5)]) == [1.0] * 5  # all distinct: unchanged


def _step_on_logits(counts: list[int], targets: list[float], weights: list[float]) -> torch.Tensor:
    """Minus the gradient of the weighted square loss on a tabular softmax's logits at ρ = 0."""
    z = torch.zeros(len(counts), requires_grad=True)
    logp = torch.log_softmax(z, 0)
    which = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    ref = logp.detach()[which]
    target = torch.tensor([targets[c] for c in which.tolist()])
    loss = (torch.tensor(weights) * selfplay_square_loss(logp[which], ref, target, eta=1.0)).mean()
    loss.backward()
    return -z.grad


def test_distinct_weights_remove_the_replicator_effect():
    """Samples a×6, b×1, c×1 with targets (0.1, 0.5, −0.6). Per-sample weights move each logit by count ×
    target (b moves as far as a, though its target is 5× larger); distinct weights move each by its target
    (up to a common shift, which a softmax ignores), as multiplicative weights asks."""
    counts, g = [6, 1, 1], [0.1, 0.5, -0.6]
    keys = [(0, c) for c, n in enumerate(counts) for _ in range(n)]
    plain = _step_on_logits(counts, g, [1.0] * 8)
    distinct = _step_on_logits(counts, g, distinct_response_weights(keys))
    ratio = lambda d: ((d[1] - d[0]) / (g[1] - g[0]), (d[2] - d[0]) / (g[2] - g[0]))  # noqa: E731
    a, b = ratio(distinct)
    assert a == pytest.approx(b.item(), rel=1e-5)  # Δz ∝ g: the same slope for every pair
    a, b = ratio(plain)
    assert abs(a - b) > 0.1 * abs(a)  # per-sample weights: the slopes differ


def test_recipe_multiplies_each_loss_by_its_weight():
    from genpref.data.encode import Encoded
    from genpref.selfplay.recipe import SelfPlayItem, SelfPlayRecipe

    class Fixed(torch.nn.Module):
        def forward(self, **batch):
            return torch.tensor([-3.0, -3.0]), torch.tensor([2, 2])

    class Tok:
        pad_token_id = 0

    items = [
        SelfPlayItem(Encoded([1, 2, 3], 1, False), -4.0, 0.0, 0, weight=0.5),
        SelfPlayItem(Encoded([1, 2, 4], 1, False), -4.0, 0.0, 0),
    ]
    out = SelfPlayRecipe(items, Tok(), eta=1.0, length_normalized=False, packing=False).micro_step(
        Fixed(), [0, 1], "cpu"
    )
    assert out.losses.tolist() == pytest.approx([0.5, 1.0])  # ρ = 1, target 0: (1 − 0)² × weight


def test_inverse_propensity_hand_values_and_clip():
    import math

    from genpref.losses.selfplay import inverse_propensity_weights

    logps = [math.log(p) for p in (0.5, 0.5, 0.25, 0.05)]
    # raw 1/(Kπ) with K = 4: 0.5, 0.5, 1, 5; mean 1.75
    assert inverse_propensity_weights(logps, 4) == pytest.approx([2 / 7, 2 / 7, 4 / 7, 20 / 7])
    # clip 2: raw 0.5, 0.5, 1, 2; mean 1
    assert inverse_propensity_weights(logps, 4, clip=2.0) == pytest.approx([0.5, 0.5, 1.0, 2.0])
    # long answers: tiny probabilities (no overflow) all clip, so the weights are the plain ones
    assert inverse_propensity_weights([-1e4, -350.0, -80.0], 8) == pytest.approx([1.0, 1.0, 1.0])


def test_inverse_propensity_gives_every_response_the_same_expected_weight():
    """Over many draws of K samples from π, the weight a response receives per prompt does not depend on
    its probability (unbiased), where per-sample weights give it K·π."""
    import numpy as np

    from genpref.losses.selfplay import inverse_propensity_weights

    rng = np.random.default_rng(0)
    pi, k, prompts = np.array([0.7, 0.2, 0.08, 0.02]), 8, 4000
    draws = rng.choice(4, size=(prompts, k), p=pi)
    raw = inverse_propensity_weights(np.log(pi[draws]).ravel().tolist(), k, clip=1e9)
    total = np.bincount(draws.ravel(), weights=np.asarray(raw), minlength=4) / prompts
    assert np.allclose(total / total.mean(), 1.0, atol=0.1)  # every response the same, within sampling noise
    plain = np.bincount(draws.ravel(), minlength=4) / prompts
    assert plain[0] / plain[3] > 20  # per-sample weights: 0.7 / 0.02 = 35 in expectation


def test_selfplay_weights_dispatch():
    from genpref.losses.selfplay import selfplay_weights

    keys, logps = [(0, "a"), (0, "a"), (0, "b")], [-0.4, -0.4, -1.1]
    assert selfplay_weights("sample", keys, logps, 3) == [1.0, 1.0, 1.0]
    assert selfplay_weights("distinct", keys, logps, 3) == pytest.approx([0.75, 0.75, 1.5])
    with pytest.raises(ValueError, match="weighting"):
        selfplay_weights("uniform", keys, logps, 3)
    # judged_distinct: the judge puts all three in one class -> each sample 1/3 of the prompt's weight 3
    assert selfplay_weights("judged_distinct", keys, logps, 3, judge_classes=[0, 0, 0]) == pytest.approx(
        [1.0, 1.0, 1.0]
    )
    assert selfplay_weights("judged_distinct", keys, logps, 3, judge_classes=[0, 1, 1]) == pytest.approx(
        [1.5, 0.75, 0.75]
    )
    with pytest.raises(ValueError, match="one judge class per sample"):
        selfplay_weights("judged_distinct", keys, logps, 3)


def test_judge_equivalence_classes_by_hand():
    from genpref.losses.selfplay import judge_equivalence_classes

    # the docstring's example: rows 0 and 1 differ by at most 0.02, row 2 by at least 0.4
    p = [[0.5, 0.5, 0.9], [0.5, 0.5, 0.88], [0.1, 0.12, 0.5]]
    assert judge_equivalence_classes(p, 0.05) == [0, 0, 1]
    assert judge_equivalence_classes(p, 0.01) == [0, 1, 2]  # 0.02 apart: distinct at a tighter tolerance
    # transitive closure: 0 ~ 1 (0.04) and 1 ~ 2 (0.04), though 0 and 2 differ by 0.08
    chain = [[0.5, 0.5, 0.5, 0.1], [0.5, 0.5, 0.5, 0.14], [0.5, 0.5, 0.5, 0.18], [0.9, 0.86, 0.82, 0.5]]
    assert judge_equivalence_classes(chain, 0.05) == [0, 0, 0, 1]
    # ids in order of first appearance
    assert judge_equivalence_classes([[0.5, 0.9, 0.5], [0.1, 0.5, 0.1], [0.5, 0.9, 0.5]], 0.05) == [0, 1, 0]


def test_judged_distinct_reads_classes_off_the_oracle_game():
    """With the exact game as judge, the judge's classes of π's answers are the game's categories, though
    the texts differ (the rule that reads the category is never consulted)."""
    from genpref.cyclic.games import GAMES
    from genpref.losses.selfplay import judge_equivalence_classes
    from genpref.selfplay.nash_judges import OracleJudge

    texts = ["dog.", " Dog!", "fish", "tuna", "a fish.", "Cats"]
    prob = OracleJudge(GAMES["pets_weighted"]).rank("Q", texts).prob_matrix
    assert judge_equivalence_classes(prob, 0.05) == [0, 0, 1, 2, 1, 3]


@pytest.mark.parametrize("weighting", ["sample", "distinct", "judged_distinct"])
def test_build_stage_writes_the_weights_the_config_asks_for(tmp_path, weighting):
    """A prompt whose samples repeat (a, a, a, b): the training rows carry 1/n(y)-weights under
    ``weighting: distinct`` and weight 1 otherwise; the recipe items read them back."""
    from tiny_models import tiny_llama

    from genpref.models.backbone import load_tokenizer
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.generate import Sample
    from genpref.selfplay.run import build_stage

    tok = load_tokenizer(tiny_llama())
    a, b = Sample("a", [5, 6], -0.3, True), Sample("b", [7], -1.4, True)
    # the judge: sample 0 beats every other with 0.8, the rest tie, so its classes are {0}, {1, 2, 3}
    p = torch.full((4, 4), 0.5)
    p[0, 1:], p[1:, 0] = 0.8, 0.2
    judgment = {"prob_matrix": p.tolist(), "logit_matrix": torch.logit(p).tolist()}
    cfg = SelfPlayConfig(k=4, eta=1.0, weighting=weighting)
    items, _, _ = build_stage(cfg, tmp_path, ["Q"], [[a, a, a, b]], [judgment], tok, "parent")
    expected = {
        "distinct": [2 / 3, 2 / 3, 2 / 3, 2.0],  # texts a, a, a, b
        "judged_distinct": [2.0, 2 / 3, 2 / 3, 2 / 3],  # judge classes 0, 1, 1, 1
        "sample": [1.0] * 4,
    }[weighting]
    assert [it.weight for it in items] == pytest.approx(expected)


def test_build_stage_centres_targets_when_asked(tmp_path):
    """``center_targets``: the rows' targets shift by one constant per prompt so that Σ w·target = 0
    (here distinct weights 2/3, 2/3, 2/3, 2 on GPO targets that sum to 0 unweighted but not weighted)."""
    from tiny_models import tiny_llama

    from genpref.models.backbone import load_tokenizer
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.generate import Sample
    from genpref.selfplay.run import build_stage

    tok = load_tokenizer(tiny_llama())
    a, b = Sample("a", [5, 6], -0.3, True), Sample("b", [7], -1.4, True)
    p = torch.full((4, 4), 0.5)
    p[0, 1:], p[1:, 0] = 0.8, 0.2
    judgment = {"prob_matrix": p.tolist(), "logit_matrix": torch.logit(p).tolist()}

    def build(center: bool, folder):
        cfg = SelfPlayConfig(k=4, eta=1.0, weighting="distinct", center_targets=center)
        return build_stage(cfg, folder, ["Q"], [[a, a, a, b]], [judgment], tok, "parent")[0]

    plain, centred = build(False, tmp_path / "plain"), build(True, tmp_path / "centred")
    shift = {round(c.target - q.target, 9) for c, q in zip(centred, plain)}
    assert len(shift) == 1 and abs(shift.pop()) > 0.1  # one constant, and not zero here
    assert sum(it.weight * it.target for it in centred) == pytest.approx(0.0, abs=1e-9)


def test_judge_tolerance_out_of_range_names_the_field():
    from genpref.errors import ConfigError
    from genpref.selfplay.config import SelfPlayConfig

    with pytest.raises(ConfigError, match="judge_tolerance"):
        SelfPlayConfig(weighting="judged_distinct", judge_tolerance=1.5)


def test_merge_duplicates_hand_values():
    """a, a, b with weights 1, 1, 2 (N = 3) → a with 2, b with 2, both × M/N = 2/3; a different target or
    prompt index keeps a copy apart."""
    from genpref.data.encode import Encoded
    from genpref.selfplay.recipe import SelfPlayItem, merge_duplicates

    a, b = Encoded([1, 2, 3], 1, False), Encoded([1, 2, 4], 1, False)
    items = [
        SelfPlayItem(a, -4.0, 0.1, 0),
        SelfPlayItem(a, -4.0, 0.1 + 1e-9, 0),  # a judge's last bits
        SelfPlayItem(b, -2.0, -0.3, 0, weight=2.0),
    ]
    rows = merge_duplicates(items)
    assert [r.seq.input_ids for r in rows] == [[1, 2, 3], [1, 2, 4]]
    assert [r.weight for r in rows] == pytest.approx([4 / 3, 4 / 3])
    assert items[0].weight == 1.0  # the inputs are not modified
    apart = [SelfPlayItem(a, -4.0, 0.1, 0), SelfPlayItem(a, -4.0, 0.2, 0), SelfPlayItem(a, -4.0, 0.1, 1)]
    assert [r.weight for r in merge_duplicates(apart)] == [1.0, 1.0, 1.0]


def test_merged_rows_give_the_same_full_batch_loss_and_gradient():
    """The training loop's step loss is Σ row losses / rows; on a real (tiny) causal LM the merged rows
    give the same value and gradient as the N samples they stand for."""
    from genpref.data.encode import Encoded
    from genpref.policy.logprobs import PolicyLogps
    from genpref.policy.model import load_policy
    from genpref.selfplay.recipe import SelfPlayItem, SelfPlayRecipe, merge_duplicates
    from tests.tiny_models import tiny_llama

    lm, tok = load_policy(tiny_llama())
    model = PolicyLogps(lm, 1024)
    prompt = [5, 6, 7, 8]
    answers = [[9, 10], [9, 10], [9, 10], [11, 12], [11, 12], [13, 14]]
    targets = {9: 0.3, 11: -0.1, 13: -0.4}
    items = [SelfPlayItem(Encoded(prompt + y, 4, False), -5.0, targets[y[0]], 0) for y in answers]

    def step(rows):
        lm.zero_grad()
        recipe = SelfPlayRecipe(rows, tok, eta=2.0, length_normalized=False, packing=False, share_prompt=True)
        loss = recipe.micro_step(model, list(range(len(rows))), "cpu").losses.sum() / len(rows)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in lm.parameters() if p.grad is not None])

    merged = merge_duplicates(items)
    assert len(merged) == 3
    loss_all, grad_all = step(items)
    loss_merged, grad_merged = step(merged)
    assert loss_merged == pytest.approx(loss_all, rel=1e-5)
    scale = grad_all.abs().max()  # float32 sums in another order: ~1e-6 of the largest entry
    assert (grad_merged - grad_all).abs().max() <= 1e-5 * scale


def test_center_targets_hand_values():
    from genpref.losses.selfplay import center_targets

    # prompt 0: g (0.3, -0.1, -0.1), w (2, 1, 1): weighted mean 0.1; prompt 1 alone: its own mean
    got = center_targets([0.3, -0.1, -0.1, 0.5], [2.0, 1.0, 1.0, 1.0], [0, 0, 0, 1])
    assert got == pytest.approx([0.2, -0.2, -0.2, 0.0])


def test_centred_targets_leave_unsampled_responses_alone():
    """Tabular softmax over 4 responses, samples (0, 0, 1, 2) with weights (0.5, 0.5, 2, 1) and
    optimistic-like targets that do not sum to 0. One step of the weighted square loss moves the unsampled
    response 3 (and shifts all logits along π) unless the targets are centred; centred, Δz_3 = 0 exactly
    and the sampled logits move by w·g̃ summed per response, as the loss asks."""
    from genpref.losses.selfplay import center_targets

    which = torch.tensor([0, 0, 1, 2])
    weights = [0.5, 0.5, 2.0, 1.0]
    raw = [0.4, 0.4, -0.2, 0.2]

    def step(targets):
        z = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])).requires_grad_(True)
        logp = torch.log_softmax(z, 0)
        loss = torch.tensor(weights) * selfplay_square_loss(
            logp[which], logp.detach()[which], torch.tensor(targets), eta=1.0
        )
        loss.sum().backward()
        return -z.grad / 2

    assert abs(step(raw)[3]) > 1e-3  # Σ w g = 0.2 + 0.2 - 0.4 + 0.2 ≠ 0 drags response 3 along π
    centred = center_targets(raw, weights, [0] * 4)
    dz = step(centred)
    assert dz[3].item() == pytest.approx(0.0, abs=1e-7)
    per_response = [
        sum(w * g for w, g, c in zip(weights, centred, which.tolist()) if c == r) for r in range(3)
    ]
    assert dz[:3].tolist() == pytest.approx(per_response, abs=1e-6)


def test_judged_classes_and_centring_make_one_step_multiplicative_weights_on_a_softmax():
    """The Nash benchmark's default (``judged_distinct`` + ``center_targets``) on a tabular softmax over
    the judge's classes: classes drawn 5, 2 and 1 times (class 3 never) from a non-uniform π. One step
    moves each drawn class's log-probability by λ·g up to one shared constant (λ the same for all,
    however often each was drawn, as multiplicative weights asks) and leaves the undrawn class's logit
    where it was; with per-sample weights the slope depends on the class's count."""
    from genpref.losses.selfplay import center_targets, selfplay_weights

    counts, g = [5, 2, 1, 0], [-0.2, 0.1, 0.4, 0.0]
    which = [c for c, n in enumerate(counts) for _ in range(n)]
    rows = [g[c] for c in which]

    def step(weights, targets):
        z = torch.log(torch.tensor([0.5, 0.25, 0.15, 0.1])).requires_grad_(True)
        logp = torch.log_softmax(z, 0)
        idx = torch.tensor(which)
        loss = torch.tensor(weights) * selfplay_square_loss(
            logp[idx], logp.detach()[idx], torch.tensor(targets), 1.0
        )
        loss.sum().backward()
        return -z.grad / 2

    keys = [(0, f"text {i}") for i in range(len(which))]  # every text differs: only the judge groups them
    w = selfplay_weights("judged_distinct", keys, [0.0] * len(which), k=len(which), judge_classes=which)
    dz = step(w, center_targets(rows, w, [0] * len(which)))
    slopes = [(dz[c] - dz[0]) / (g[c] - g[0]) for c in (1, 2)]
    assert slopes[0].item() == pytest.approx(slopes[1].item(), rel=1e-5)
    assert dz[3].item() == pytest.approx(0.0, abs=1e-7)
    plain = step([1.0] * len(which), rows)
    plain_slopes = [(plain[c] - plain[0]) / (g[c] - g[0]) for c in (1, 2)]
    assert plain_slopes[1] < 0.7 * plain_slopes[0]  # the class drawn once moves less per unit of g
