"""Policy-optimisation losses: hand-computed values and invariants.

Most hand values share one pair, chosen with round numbers:

    policy_chosen = −1, policy_rejected = −3, reference_chosen = reference_rejected = −2, β = ½
    ⇒ chosen log-ratio ρ_w = 1, rejected log-ratio ρ_l = −1, margin h = ρ_w − ρ_l = 2, β h = 1,
      rewards β ρ = (½, −½).

Each test's docstring finishes the derivation for its loss.
"""

from __future__ import annotations

import math

import pytest
import torch

from genpref.losses.policy import (
    PolicyLoss,
    cdpo_loss,
    dpo_loss,
    hinge_loss,
    ipo_loss,
    nll_loss,
    orpo_loss,
    policy_loss,
    robust_dpo_loss,
    simpo_loss,
    sppo_hard_loss,
    sppo_loss,
)
from genpref.losses.policy_unpaired import kto_kl_estimate, kto_loss

BETA = 0.5
PAIR = dict(
    policy_chosen_logps=torch.tensor([-1.0]),
    policy_rejected_logps=torch.tensor([-3.0]),
    reference_chosen_logps=torch.tensor([-2.0]),
    reference_rejected_logps=torch.tensor([-2.0]),
)
LOGPS = tuple(PAIR.values())


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))  # −log σ(−x)


def close(t: torch.Tensor, expected: float | list[float]) -> bool:
    return torch.allclose(t, torch.tensor(expected, dtype=t.dtype).reshape(t.shape), atol=1e-6, rtol=1e-6)


def random_batch(b: int = 6, *, seed: int = 0, requires_grad: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {k: -torch.rand(b, generator=g) * 10 for k in PAIR}
    if requires_grad:
        out["policy_chosen_logps"].requires_grad_(True)
        out["policy_rejected_logps"].requires_grad_(True)
    return out


def extra_args(kind: PolicyLoss, b: int) -> dict:
    """Kind-specific inputs so that every paired kind can run through the dispatcher."""
    if kind.uses_label_smoothing:
        return {"label_smoothing": 0.1}
    if kind.uses_preference_scores:
        return {"chosen_win_prob": torch.full((b,), 0.8), "rejected_win_prob": torch.full((b,), 0.3)}
    return {}


PAIRED = [k for k in PolicyLoss if k.paired]


# ---------------------------------------------------------------- hand values


def test_dpo_hand_value():
    """−log σ(β h) = −log σ(1) = log(1 + e^{−1}); rewards β ρ = (½, −½)."""
    out = dpo_loss(*LOGPS, BETA)
    assert close(out.losses, softplus(-1))
    assert close(out.chosen_rewards, 0.5) and close(out.rejected_rewards, -0.5)


def test_cdpo_hand_value_and_dpo_limit():
    """ε = 0.1: 0.9·(−log σ(1)) + 0.1·(−log σ(−1)) = 0.9 log(1 + e^{−1}) + 0.1 log(1 + e)."""
    out = cdpo_loss(*LOGPS, BETA, label_smoothing=0.1)
    assert close(out.losses, 0.9 * softplus(-1) + 0.1 * softplus(1))
    batch = random_batch()
    assert torch.allclose(
        cdpo_loss(*batch.values(), BETA, 0.0).losses, dpo_loss(*batch.values(), BETA).losses
    )


def test_robust_hand_value_and_dpo_limit():
    """ε = 0.1: (0.9 log(1 + e^{−1}) − 0.1 log(1 + e)) / (1 − 0.2)."""
    out = robust_dpo_loss(*LOGPS, BETA, label_smoothing=0.1)
    assert close(out.losses, (0.9 * softplus(-1) - 0.1 * softplus(1)) / 0.8)
    batch = random_batch()
    assert torch.allclose(
        robust_dpo_loss(*batch.values(), BETA, 0.0).losses, dpo_loss(*batch.values(), BETA).losses
    )
    with pytest.raises(ValueError, match="0.5"):
        robust_dpo_loss(*LOGPS, BETA, label_smoothing=0.5)


def test_ipo_hand_value():
    """Target 1/(2β) = 1; (h − 1)² = (2 − 1)² = 1. At β = ¼ the target is 2 = h: loss 0."""
    assert close(ipo_loss(*LOGPS, BETA).losses, 1.0)
    assert close(ipo_loss(*LOGPS, 0.25).losses, 0.0)


def test_ipo_conventions_share_one_formula():
    """IPO and IPO_SUM differ only in what the engine feeds (averages vs sums), not in the formula."""
    assert PolicyLoss.IPO.length_normalized and not PolicyLoss.IPO_SUM.length_normalized
    batch = random_batch()
    a = policy_loss(PolicyLoss.IPO, beta=BETA, **batch).losses
    b = policy_loss(PolicyLoss.IPO_SUM, beta=BETA, **batch).losses
    assert torch.equal(a, b)
    # Feeding per-token averages is dividing each log-ratio by its completion length.
    lengths_w, lengths_l = torch.tensor([3.0]), torch.tensor([5.0])
    avg = [PAIR["policy_chosen_logps"] / lengths_w, PAIR["policy_rejected_logps"] / lengths_l]
    avg += [PAIR["reference_chosen_logps"] / lengths_w, PAIR["reference_rejected_logps"] / lengths_l]
    # ρ_w / 3 − ρ_l / 5 = 1/3 + 1/5 = 8/15; (8/15 − 1)² = (7/15)²
    assert close(ipo_loss(*avg, BETA).losses, (7 / 15) ** 2)


def test_hinge_hand_value():
    """relu(1 − β h): h = 2 gives relu(0) = 0; h = 0 (ties) gives 1; h = −2 gives 2."""
    pc = torch.tensor([-1.0, -2.0, -3.0])
    pr = torch.tensor([-3.0, -2.0, -1.0])
    ref = torch.full((3,), -2.0)
    assert close(hinge_loss(pc, pr, ref, ref, BETA).losses, [0.0, 1.0, 2.0])


def test_sppo_hand_values():
    """η = 1/β = 2. Soft P̂ = (¾, ¼): targets η(P̂ − ½) = (½, −½); (1 − ½)² + (−1 + ½)² = ½.
    Hard (P̂ = 1, 0): targets (1, −1) = (ρ_w, ρ_l), loss 0; at β = 1 targets (½, −½), loss ½ again."""
    soft = sppo_loss(*LOGPS, BETA, torch.tensor([0.75]), torch.tensor([0.25]))
    assert close(soft.losses, 0.5)
    assert close(sppo_hard_loss(*LOGPS, BETA).losses, 0.0)
    assert close(sppo_hard_loss(*LOGPS, 1.0).losses, 0.5)


def test_sppo_targets():
    """The loss is zero exactly where each log-ratio equals η (P̂ − ½), and hard = soft at P̂ = (1, 0)."""
    b = 5
    p_w, p_l = torch.rand(b), torch.rand(b)
    ref_w, ref_l = -torch.rand(b) * 5, -torch.rand(b) * 5
    eta = 1 / BETA
    pol_w, pol_l = ref_w + eta * (p_w - 0.5), ref_l + eta * (p_l - 0.5)
    assert torch.allclose(
        sppo_loss(pol_w, pol_l, ref_w, ref_l, BETA, p_w, p_l).losses, torch.zeros(b), atol=1e-6
    )
    batch = random_batch(b)
    hard = sppo_hard_loss(*batch.values(), BETA).losses
    soft = sppo_loss(*batch.values(), BETA, torch.ones(b), torch.zeros(b)).losses
    assert torch.equal(hard, soft)


def test_offline_sppo_equals_the_selfplay_square_loss_on_each_side():
    """Parity (issue 16): offline SPPO on a pair is the self-play square loss of each side with SPPO's
    target, η = 1/β: (ρ_w − η(P̂_w − ½))² + (ρ_l − η(P̂_l − ½))²."""
    from genpref.losses.selfplay import selfplay_square_loss, sppo_target

    b = 6
    batch = random_batch(b, seed=3)
    p_w, p_l = torch.rand(b), torch.rand(b)
    pw, pl, rw, rl = batch.values()
    offline = sppo_loss(pw, pl, rw, rl, BETA, p_w, p_l).losses
    selfplay = selfplay_square_loss(pw, rw, sppo_target(p_w), 1 / BETA) + selfplay_square_loss(
        pl, rl, sppo_target(p_l), 1 / BETA
    )
    assert torch.allclose(offline, selfplay, rtol=0, atol=1e-6)
    # by hand for one row: ρ_w = 1, ρ_l = -1, P̂ = (0.75, 0.25), β = 0.5 → η = 2, targets (0.5, -0.5):
    # (1 − 2·0.25)² + (−1 − 2·(−0.25))² = 0.25 + 0.25
    one = sppo_loss(*(torch.tensor([v]) for v in (0.0, -2.0, -1.0, -1.0)), 0.5, torch.tensor([0.75]),
                    torch.tensor([0.25])).losses  # fmt: skip
    assert torch.allclose(one, torch.tensor([0.5]))


def test_selfplay_targets_from_a_judge_matrix():
    """SPPO: P̂(y_i ≻ π_t) − ½ with the row mean (diagonal ½ included, or left out); GPO: the logit mean;
    the recipe's targets() calls the same function."""
    from genpref.losses.selfplay import selfplay_target
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.run import targets

    prob = torch.tensor([[0.5, 0.9, 0.7], [0.1, 0.5, 0.4], [0.3, 0.6, 0.5]])
    # row 0: mean(0.5, 0.9, 0.7) = 0.7 → 0.2; without self: mean(0.9, 0.7) = 0.8 → 0.3
    assert torch.allclose(selfplay_target(prob, "sppo"), torch.tensor([0.2, 1 / 3 - 0.5, 1.4 / 3 - 0.5]))
    assert torch.allclose(selfplay_target(prob, "sppo", include_self=False)[0], torch.tensor(0.3))
    logit = torch.tensor([[0.0, 2.0], [-2.0, 0.0]])
    assert torch.equal(selfplay_target(logit, "gpo", clip=0.5), torch.tensor([0.5, -0.5]))
    cfg = SelfPlayConfig(algorithm="sppo", include_self=True, target_clip=None)
    assert targets(cfg, {"prob_matrix": prob.tolist()}) == selfplay_target(prob, "sppo").tolist()


def test_simpo_hand_value():
    """Averages ℓ̄ = (−½, −3/2), β = 2, γ = 1: β(ℓ̄_w − ℓ̄_l) − γ = 2 − 1 = 1; −log σ(1); rewards β ℓ̄ = (−1, −3)."""
    out = simpo_loss(torch.tensor([-0.5]), torch.tensor([-1.5]), beta=2.0, gamma=1.0)
    assert close(out.losses, softplus(-1))
    assert close(out.chosen_rewards, -1.0) and close(out.rejected_rewards, -3.0)


def test_orpo_hand_value():
    """p_w = ½: odds 1, log odds 0. p_l = ¼: odds ⅓, log odds −log 3. log OR = log 3;
    −λ log σ(log 3) = λ log(1 + ⅓) = λ log(4/3)."""
    out = orpo_loss(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]), beta=0.2)
    assert close(out.losses, 0.2 * math.log(4 / 3))
    assert PolicyLoss.ORPO.requires_sft_term and PolicyLoss.ORPO.length_normalized


def test_orpo_finite_when_policy_is_certain():
    """An average log-prob of exactly 0 (p = 1) must not give NaN losses or gradients."""
    chosen = torch.tensor([0.0, -0.1], requires_grad=True)
    out = orpo_loss(chosen, torch.tensor([-1.0, -1.0]), beta=1.0)
    out.losses.sum().backward()
    assert torch.isfinite(out.losses).all() and torch.isfinite(chosen.grad).all()


def test_kto_hand_values():
    """β = ½, z_ref = 1, λ_D = 2, λ_U = 3, r = (3, 3, −1), label = (desirable, undesirable, undesirable):
    2(1 − σ(½(3 − 1))) = 2(1 − σ(1)); 3(1 − σ(½(1 − 3))) = 3σ(1); 3(1 − σ(½(1 + 1))) = 3(1 − σ(1))."""
    s1 = 1 / (1 + math.exp(-1))
    ref = torch.zeros(3)
    out = kto_loss(
        torch.tensor([3.0, 3.0, -1.0]), ref, torch.tensor([True, False, False]), 1.0, BETA, 2.0, 3.0
    )
    assert close(out.losses, [2 * (1 - s1), 3 * s1, 3 * (1 - s1)])
    assert close(out.rewards, [1.5, 1.5, -0.5])


def test_kto_kl_estimate():
    """mean((−1) − (−2), (−2) − (−2)) = ½; a negative mean clamps to 0; the estimate is detached."""
    policy = torch.tensor([-1.0, -2.0], requires_grad=True)
    kl = kto_kl_estimate(policy, torch.tensor([-2.0, -2.0]))
    assert kl.shape == () and close(kl, 0.5) and not kl.requires_grad
    assert kto_kl_estimate(torch.tensor([-3.0, -2.0]), torch.tensor([-2.0, -2.0])).item() == 0.0


def test_nll_hand_value():
    """−(−6)/3 = 2; −(−4)/4 = 1; a zero count is clamped to 1 rather than dividing by 0."""
    out = nll_loss(torch.tensor([-6.0, -4.0, 0.0]), torch.tensor([3, 4, 0]))
    assert close(out, [2.0, 1.0, 0.0])


# ---------------------------------------------------------------- invariants


def margin_sweep(kind: PolicyLoss, margins: torch.Tensor, **kwargs) -> torch.Tensor:
    """Loss as a function of the chosen log-ratio margin h (rejected and references fixed)."""
    n = len(margins)
    zeros = torch.zeros(n)
    return policy_loss(
        kind,
        beta=BETA,
        policy_chosen_logps=margins - 5.0,
        policy_rejected_logps=zeros - 5.0,
        reference_chosen_logps=zeros - 5.0,
        reference_rejected_logps=zeros - 5.0,
        **kwargs,
    ).losses


@pytest.mark.parametrize("kind", [PolicyLoss.DPO, PolicyLoss.HINGE, PolicyLoss.ROBUST, PolicyLoss.CDPO])
def test_monotone_in_margin(kind):
    """Non-increasing in h. cDPO only up to its minimiser β h* = log((1 − ε)/ε) (2.2 for ε = 0.1):
    past it the ε-weighted flipped term grows, by design; the sweep stays below h* / β = 4.39."""
    margins = torch.linspace(-8, 4, 121)
    kwargs = {"label_smoothing": 0.1} if kind.uses_label_smoothing else {}
    loss = margin_sweep(kind, margins, **kwargs)
    assert torch.all(loss[1:] <= loss[:-1] + 1e-7)
    assert loss[0] > loss[-1]


def test_ipo_monotone_below_target_and_minimised_at_it():
    target = 1 / (2 * BETA)
    below = margin_sweep(PolicyLoss.IPO, torch.linspace(-5, target, 61))
    assert torch.all(below[1:] <= below[:-1])
    grid = torch.linspace(-5, 5, 1001)
    assert math.isclose(grid[margin_sweep(PolicyLoss.IPO, grid).argmin()].item(), target, abs_tol=0.01)


def test_cdpo_minimised_at_conservative_margin():
    eps = 0.1
    grid = torch.linspace(0, 10, 2001)
    best = grid[margin_sweep(PolicyLoss.CDPO, grid, label_smoothing=eps).argmin()]
    assert math.isclose(BETA * best.item(), math.log((1 - eps) / eps), abs_tol=0.01)


@pytest.mark.parametrize("kind", PAIRED)
def test_rewards_detached_losses_carry_grad_and_shapes(kind):
    b = 6
    batch = random_batch(b, requires_grad=True)
    out = policy_loss(kind, beta=BETA, **batch, **extra_args(kind, b))
    assert out.losses.shape == out.chosen_rewards.shape == out.rejected_rewards.shape == (b,)
    assert out.losses.requires_grad
    assert not out.chosen_rewards.requires_grad and not out.rejected_rewards.requires_grad
    out.losses.sum().backward()
    assert batch["policy_chosen_logps"].grad is not None


def test_kto_detached_rewards_and_shapes():
    b = 5
    policy = -torch.rand(b, requires_grad=True)
    kl = kto_kl_estimate(policy * 2, -torch.rand(b))
    out = policy_loss(
        PolicyLoss.KTO,
        beta=BETA,
        policy_logps=policy,
        reference_logps=-torch.rand(b),
        label=torch.tensor([True, False, True, True, False]),
        kl=kl,
    )
    assert out.losses.shape == out.rewards.shape == (b,)
    assert out.losses.requires_grad and not out.rewards.requires_grad


@pytest.mark.parametrize("kind", [k for k in PAIRED if not k.needs_reference])
def test_reference_free_ignores_reference(kind):
    batch = random_batch()
    clean = policy_loss(kind, beta=BETA, **{k: v for k, v in batch.items() if k.startswith("policy")})
    garbage = dict(batch, reference_chosen_logps=torch.full((6,), float("nan")))
    garbage["reference_rejected_logps"] = torch.randn(6) * 1e6
    dirty = policy_loss(kind, beta=BETA, **garbage)
    for a, b in zip(clean, dirty):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", [k for k in PAIRED if k.needs_reference])
def test_reference_losses_need_reference(kind):
    batch = random_batch()
    batch.pop("reference_rejected_logps")
    with pytest.raises(ValueError, match="reference_rejected_logps"):
        policy_loss(kind, beta=BETA, **batch, **extra_args(kind, 6))


def test_kto_weights_scale_the_right_examples():
    b = 6
    policy, reference = -torch.rand(b) * 5, -torch.rand(b) * 5
    label = torch.tensor([True, False, True, False, False, True])
    base = kto_loss(policy, reference, label, 0.3, BETA).losses
    more_desirable = kto_loss(policy, reference, label, 0.3, BETA, desirable_weight=2.0).losses
    more_undesirable = kto_loss(policy, reference, label, 0.3, BETA, undesirable_weight=3.0).losses
    assert torch.allclose(more_desirable, torch.where(label, 2 * base, base))
    assert torch.allclose(more_undesirable, torch.where(label, base, 3 * base))


def test_kto_kl_is_not_backpropagated():
    """z_ref is a baseline: even if handed a KL that carries grad, no gradient flows into it."""
    policy = (-torch.rand(4)).requires_grad_()
    policy_kl = (-torch.rand(4)).requires_grad_()
    kl = (policy_kl + 1.0).mean()
    out = kto_loss(policy, -torch.rand(4), torch.tensor([True, False, True, False]), kl, BETA)
    out.losses.sum().backward()
    assert policy.grad is not None and policy_kl.grad is None


@pytest.mark.parametrize("kind", PAIRED)
def test_per_example_no_reduction_and_order_invariance(kind):
    """Each example's loss depends on that example only: permuting the batch permutes the losses."""
    b = 6
    inputs = {**random_batch(b, seed=3), **extra_args(kind, b)}

    def take(index):
        return {k: v[index] if torch.is_tensor(v) else v for k, v in inputs.items()}

    out = policy_loss(kind, beta=BETA, **inputs).losses
    perm = torch.randperm(b, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(policy_loss(kind, beta=BETA, **take(perm)).losses, out[perm])
    assert torch.allclose(policy_loss(kind, beta=BETA, **take(slice(0, 1))).losses, out[:1])


def test_dispatcher_rejects_unused_label_smoothing_and_bad_beta():
    with pytest.raises(ValueError, match="label_smoothing"):
        policy_loss(PolicyLoss.DPO, beta=BETA, label_smoothing=0.1, **PAIR)
    with pytest.raises(ValueError, match="beta"):
        policy_loss(PolicyLoss.DPO, beta=0.0, **PAIR)
    with pytest.raises(ValueError, match="chosen_win_prob"):
        policy_loss(PolicyLoss.SPPO, beta=BETA, **PAIR)
    with pytest.raises(ValueError, match="kl"):
        policy_loss(
            PolicyLoss.KTO,
            beta=BETA,
            policy_logps=torch.zeros(2),
            reference_logps=torch.zeros(2),
            label=torch.ones(2, dtype=torch.bool),
        )


def test_dispatcher_matches_functions_and_accepts_strings():
    batch = random_batch()
    assert torch.equal(policy_loss("dpo", beta=BETA, **batch).losses, dpo_loss(*batch.values(), BETA).losses)
    assert torch.equal(
        policy_loss("robust", beta=BETA, label_smoothing=0.2, **batch).losses,
        robust_dpo_loss(*batch.values(), BETA, 0.2).losses,
    )
    assert torch.equal(
        policy_loss("simpo", beta=BETA, gamma=0.3, **batch).losses,
        simpo_loss(batch["policy_chosen_logps"], batch["policy_rejected_logps"], BETA, 0.3).losses,
    )


def test_capabilities():
    assert {k for k in PolicyLoss if not k.needs_reference} == {PolicyLoss.SIMPO, PolicyLoss.ORPO}
    assert {k for k in PolicyLoss if not k.paired} == {PolicyLoss.KTO}
    assert {k for k in PolicyLoss if k.length_normalized} == {
        PolicyLoss.IPO,
        PolicyLoss.SIMPO,
        PolicyLoss.ORPO,
    }
    assert {k for k in PolicyLoss if k.requires_sft_term} == {PolicyLoss.ORPO}
    assert {k for k in PolicyLoss if k.uses_preference_scores} == {PolicyLoss.SPPO}
    assert PolicyLoss("sppo_hard") is PolicyLoss.SPPO_HARD
