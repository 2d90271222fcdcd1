"""Parity of genpref's policy losses with TRL 1.16, per example, on the same random log-probs.

How TRL is called. In TRL 1.x the DPO and KTO formulas live inside ``DPOTrainer._compute_loss`` and
``KTOTrainer._compute_loss``, which also run the model and log metrics; CPO/SimPO and ORPO have pure
loss methods (``CPOTrainer.cpo_loss``, ``ORPOTrainer.odds_ratio_loss``) that still read ``self``.
A real trainer would need a model, a tokenizer, a dataset and a reference pass, so the tests call the
unbound methods with a stand-in ``self`` holding exactly the attributes they read (``beta``,
``loss_types``, ``label_smoothing``, ...) and, for ``_compute_loss``, a stand-in model that returns
fixed per-token log-probs (looked up by the row id stored in ``input_ids[:, 0]``) instead of running a
network. ``precompute_ref_logps=True`` makes TRL read the reference log-probs from the batch. The
trainers return the batch mean, so each example runs as its own batch of one; KTO's KL reference
point is a batch statistic, so every one-example KTO call carries the same full mismatched KL batch.

Sources read (TRL 1.16.0): ``trl/trainer/dpo_trainer.py`` (``DPOTrainer._compute_loss``: the
``loss_type`` branches), ``trl/trainer/kto_trainer.py`` (``KTOTrainer._compute_loss``,
``_compute_kl_logps``), ``trl/experimental/cpo/cpo_trainer.py`` (``CPOTrainer.cpo_loss``,
``concatenated_forward``, ``get_batch_loss_metrics``), ``trl/experimental/orpo/orpo_trainer.py``
(``ORPOTrainer.odds_ratio_loss``, ``log1mexp``). If TRL renames what these read, the stand-ins fail
with AttributeError: update them against the new source.

Where TRL differs from the paper, and which genpref variant matches (each pinned below):

* IPO: DPOTrainer divides each log-ratio by its completion length (Eq. 17 uses sums). genpref's
  ``ipo`` fed per-token averages matches it; ``ipo_sum`` fed sums is Eq. 17 as printed, matched by
  CPOTrainer's ``ipo`` formula applied to summed log-ratios.
* cDPO: DPOTrainer's ``sigmoid`` ignores ``label_smoothing`` in 1.16. genpref's ``cdpo`` matches
  CPOTrainer's ``sigmoid`` (fed log-ratios) and DPOTrainer's ``aot`` on a batch of one (sorting one
  element is the identity, leaving the label-smoothed sigmoid on h).
* SimPO: ``simpo_gamma`` is the paper's γ (TRL subtracts γ/β, then scales by β). Paper SimPO is
  CPOTrainer with ``cpo_alpha=0``; the default adds an NLL term, which these loss methods exclude.
* ORPO: TRL's ``odds_ratio_loss`` returns +λ log σ(·), subtracted from the NLL; genpref returns the
  loss −λ log σ(·). (TRL's NLL also covers prompt tokens; genpref's ``nll_loss`` is per completion.)
* SPPO: only the hard variant exists in TRL; it equals genpref's ``sppo_hard``.
"""

from __future__ import annotations

import types
from collections import defaultdict

import pytest
import torch

pytest.importorskip("trl", reason="trl (a dev dependency) is not installed: no reference to compare against")

from trl import DPOTrainer, KTOTrainer  # noqa: E402
from trl.experimental.cpo import CPOTrainer  # noqa: E402
from trl.experimental.orpo import ORPOTrainer  # noqa: E402

from genpref.losses.policy import PolicyLoss, policy_loss  # noqa: E402
from genpref.losses.policy_unpaired import kto_kl_estimate, kto_loss  # noqa: E402

B, T = 8, 10  # examples, completion tokens at most
RTOL, ATOL = 1e-5, 1e-6  # atol only for losses that are exactly 0 (hinge past its margin)


# ---------------------------------------------------------------- stand-ins for TRL's objects


class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather(x):
        return x

    @staticmethod
    def gather_for_metrics(x):
        return x


class _TableModel:
    """Returns the per-token log-probs of the rows named by ``input_ids[:, 0]`` (TRL's fused LM head output)."""

    def __init__(self, per_token_logps: torch.Tensor):
        self.table = per_token_logps  # (R, T), zero outside each completion

    def __call__(self, input_ids, **_):
        log_probs = self.table[input_ids[:, 0]]  # (n, T)
        zeros = torch.zeros_like(log_probs)
        return types.SimpleNamespace(
            log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool()
        )


def _trainer_stub(**attributes) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        model=types.SimpleNamespace(training=True),
        accelerator=_Accelerator(),
        aux_loss_enabled=False,
        precompute_ref_logps=True,
        _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0,
        _tp_size=1,
        **attributes,
    )


def _completion_inputs(rows: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    """input_ids carrying row ids, and masks with one prompt token then ``lengths`` completion tokens."""
    n = len(rows)
    input_ids = torch.zeros(n, T + 1, dtype=torch.long)
    input_ids[:, 0] = rows
    completion_mask = torch.zeros(n, T + 1, dtype=torch.long)
    completion_mask[:, 1:] = (torch.arange(T) < lengths[:, None]).long()
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "completion_mask": completion_mask,
    }


# ---------------------------------------------------------------- data


def _per_token(generator: torch.Generator, lengths: torch.Tensor) -> torch.Tensor:
    mask = torch.arange(T) < lengths[:, None]  # (B, T)
    return -torch.rand(len(lengths), T, generator=generator) * 2.5 * mask  # (B, T), 0 outside the completion


@pytest.fixture(scope="module")
def pairs() -> dict[str, torch.Tensor]:
    """Per-token log-probs of B pairs with varied lengths, and their sums and per-token averages."""
    g = torch.Generator().manual_seed(0)
    chosen_len = torch.randint(1, T + 1, (B,), generator=g)
    rejected_len = torch.randint(1, T + 1, (B,), generator=g)
    data = {
        "chosen_len": chosen_len,
        "rejected_len": rejected_len,
        "policy_chosen": _per_token(g, chosen_len),
        "policy_rejected": _per_token(g, rejected_len),
        "reference_chosen": _per_token(g, chosen_len),
        "reference_rejected": _per_token(g, rejected_len),
    }
    for side in ("chosen", "rejected"):
        for model in ("policy", "reference"):
            tokens = data[f"{model}_{side}"]
            data[f"{model}_{side}_logps"] = tokens.sum(1)  # (B,)
            data[f"{model}_{side}_avg"] = tokens.sum(1) / data[f"{side}_len"]  # (B,)
    return data


def _genpref_inputs(pairs, suffix: str) -> dict[str, torch.Tensor]:
    names = ("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected")
    return {f"{name}_logps": pairs[f"{name}_{suffix}"] for name in names}


def _assert_parity(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- TRL calls


def _trl_dpo(pairs, loss_type: str, beta: float, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """Per-example loss and rewards from ``DPOTrainer._compute_loss``, one example per call."""
    model = _TableModel(torch.cat([pairs["policy_chosen"], pairs["policy_rejected"]]))
    losses, chosen_rewards, rejected_rewards = [], [], []
    for i in range(B):
        trainer = _trainer_stub(
            ld_alpha=None,
            f_divergence_type="reverse_kl",
            loss_types=[loss_type],
            loss_weights=[1.0],
            beta=beta,
            label_smoothing=label_smoothing,
            use_weighting=False,
        )
        rows = torch.tensor([i, B + i])  # the batch is [chosen, rejected]
        lengths = torch.stack([pairs["chosen_len"][i], pairs["rejected_len"][i]])
        inputs = _completion_inputs(rows, lengths)
        inputs["ref_chosen_logps"] = pairs["reference_chosen_logps"][i : i + 1]
        inputs["ref_rejected_logps"] = pairs["reference_rejected_logps"][i : i + 1]
        losses.append(DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False))
        chosen_rewards.append(trainer._metrics["train"]["rewards/chosen"][-1])
        rejected_rewards.append(trainer._metrics["train"]["rewards/rejected"][-1])
    return {
        "losses": torch.stack(losses),
        "chosen_rewards": torch.tensor(chosen_rewards),
        "rejected_rewards": torch.tensor(rejected_rewards),
    }


def _trl_cpo(chosen: torch.Tensor, rejected: torch.Tensor, loss_type: str, beta: float, **attributes):
    trainer = types.SimpleNamespace(
        alpha=0.0, accelerator=_Accelerator(), loss_type=loss_type, beta=beta, label_smoothing=0.0
    )
    vars(trainer).update(attributes)
    return CPOTrainer.cpo_loss(trainer, chosen, rejected)  # (losses, chosen_rewards, rejected_rewards)


# ---------------------------------------------------------------- DPOTrainer loss types


@pytest.mark.parametrize(
    ("kind", "trl_loss_type", "beta", "label_smoothing"),
    [
        (PolicyLoss.DPO, "sigmoid", 0.1, 0.0),
        (PolicyLoss.HINGE, "hinge", 1.0, 0.0),
        (PolicyLoss.ROBUST, "robust", 0.1, 0.2),
        (PolicyLoss.SPPO_HARD, "sppo_hard", 0.1, 0.0),
    ],
)
def test_dpo_trainer_summed_losses(pairs, kind, trl_loss_type, beta, label_smoothing):
    theirs = _trl_dpo(pairs, trl_loss_type, beta, label_smoothing)
    ours = policy_loss(kind, beta=beta, label_smoothing=label_smoothing, **_genpref_inputs(pairs, "logps"))
    _assert_parity(ours.losses, theirs["losses"])
    _assert_parity(ours.chosen_rewards, theirs["chosen_rewards"])
    _assert_parity(ours.rejected_rewards, theirs["rejected_rewards"])
    if kind is PolicyLoss.HINGE:  # the data must exercise both sides of the hinge
        assert (ours.losses == 0).any() and (ours.losses > 0).any()


def test_ipo_length_normalized_matches_trl(pairs):
    """TRL's ``ipo`` = genpref's ``ipo`` fed per-token averages; Eq. 17 on sums (``ipo_sum``) differs."""
    beta = 0.5
    theirs = _trl_dpo(pairs, "ipo", beta)
    ours = policy_loss(PolicyLoss.IPO, beta=beta, **_genpref_inputs(pairs, "avg"))
    _assert_parity(ours.losses, theirs["losses"])
    paper = policy_loss(PolicyLoss.IPO_SUM, beta=beta, **_genpref_inputs(pairs, "logps"))
    assert not torch.allclose(paper.losses, theirs["losses"], rtol=1e-2)  # lengths vary, so they differ


def test_ipo_sum_matches_eq17_on_sums(pairs):
    """CPOTrainer's ``ipo`` applies Eq. 17 to whatever it is fed; feed it the summed log-ratios."""
    beta = 0.1
    x = _genpref_inputs(pairs, "logps")
    chosen = x["policy_chosen_logps"] - x["reference_chosen_logps"]
    rejected = x["policy_rejected_logps"] - x["reference_rejected_logps"]
    theirs, _, _ = _trl_cpo(chosen, rejected, "ipo", beta)
    _assert_parity(policy_loss(PolicyLoss.IPO_SUM, beta=beta, **x).losses, theirs)


def test_cdpo_matches_trl_label_smoothing(pairs):
    beta, eps = 0.1, 0.2
    x = _genpref_inputs(pairs, "logps")
    ours = policy_loss(PolicyLoss.CDPO, beta=beta, label_smoothing=eps, **x).losses
    chosen = x["policy_chosen_logps"] - x["reference_chosen_logps"]
    rejected = x["policy_rejected_logps"] - x["reference_rejected_logps"]
    via_cpo, _, _ = _trl_cpo(chosen, rejected, "sigmoid", beta, label_smoothing=eps)
    _assert_parity(ours, via_cpo)
    _assert_parity(ours, _trl_dpo(pairs, "aot", beta, eps)["losses"])  # batch of one: sort is the identity
    # TRL 1.16's DPOTrainer ``sigmoid`` silently ignores label_smoothing: it is plain DPO.
    ignored = _trl_dpo(pairs, "sigmoid", beta, eps)["losses"]
    _assert_parity(policy_loss(PolicyLoss.DPO, beta=beta, **x).losses, ignored)
    assert not torch.allclose(ours, ignored, rtol=1e-3)


# ---------------------------------------------------------------- reference-free: CPOTrainer (SimPO), ORPOTrainer


def test_simpo_matches_cpo_trainer(pairs):
    """CPOTrainer feeds per-token averages for ``simpo``; its ``simpo_gamma`` is the paper's γ."""
    beta, gamma = 2.0, 0.8
    chosen, rejected = pairs["policy_chosen_avg"], pairs["policy_rejected_avg"]
    losses, chosen_rewards, rejected_rewards = _trl_cpo(chosen, rejected, "simpo", beta, simpo_gamma=gamma)
    ours = policy_loss(PolicyLoss.SIMPO, beta=beta, gamma=gamma, **_genpref_inputs(pairs, "avg"))
    _assert_parity(ours.losses, losses)
    _assert_parity(ours.chosen_rewards, chosen_rewards)
    _assert_parity(ours.rejected_rewards, rejected_rewards)


def test_orpo_matches_orpo_trainer(pairs):
    """ORPOTrainer feeds per-token averages; it returns +λ log σ(log OR) and subtracts it from the NLL."""
    lam = 0.25
    trainer = types.SimpleNamespace(beta=lam, accelerator=_Accelerator())
    chosen, rejected = pairs["policy_chosen_avg"], pairs["policy_rejected_avg"]
    signed, chosen_rewards, rejected_rewards, _, _ = ORPOTrainer.odds_ratio_loss(trainer, chosen, rejected)
    ours = policy_loss(PolicyLoss.ORPO, beta=lam, **_genpref_inputs(pairs, "avg"))
    _assert_parity(ours.losses, -signed)
    _assert_parity(ours.chosen_rewards, chosen_rewards)
    _assert_parity(ours.rejected_rewards, rejected_rewards)


# ---------------------------------------------------------------- KTOTrainer


@pytest.mark.parametrize("kl_shift", [0.7, -0.7], ids=["kl_positive", "kl_clamped_to_zero"])
def test_kto_matches_kto_trainer(kl_shift):
    """Per example, with the batch-mismatched KL estimate over a separate KL batch (clamped at 0)."""
    beta, w_d, w_u = 0.1, 1.3, 0.8
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    policy = _per_token(g, lengths)  # (B, T)
    reference_logps = _per_token(g, lengths).sum(1)  # (B,)
    label = torch.rand(B, generator=g) < 0.5
    label[:2] = torch.tensor([True, False])  # both kinds present
    policy_kl = _per_token(g, lengths.roll(1))  # completions of the neighbouring example
    reference_kl_logps = policy_kl.sum(1) - kl_shift + 0.1 * torch.randn(B, generator=g)  # (B,)

    model = _TableModel(torch.cat([policy, policy_kl]))
    theirs = []
    for i in range(B):
        trainer = _trainer_stub(
            calculate_KL=True, loss_type="kto", beta=beta, desirable_weight=w_d, undesirable_weight=w_u
        )
        trainer._compute_kl_logps = types.MethodType(KTOTrainer._compute_kl_logps, trainer)
        inputs = _completion_inputs(torch.tensor([i]), lengths[i : i + 1])
        kl_inputs = _completion_inputs(B + torch.arange(B), lengths.roll(1))
        inputs.update({f"KL_{k}": v for k, v in kl_inputs.items()})
        inputs.update(
            label=label[i : i + 1], ref_logps=reference_logps[i : i + 1], ref_KL_logps=reference_kl_logps
        )
        theirs.append(KTOTrainer._compute_loss(trainer, model, inputs, return_outputs=False))

    kl = kto_kl_estimate(policy_kl.sum(1), reference_kl_logps)
    assert (kl > 0) if kl_shift > 0 else (kl == 0)
    ours = kto_loss(policy.sum(1), reference_logps, label, kl, beta, w_d, w_u)
    _assert_parity(ours.losses, torch.stack(theirs))
    via_dispatcher = policy_loss(
        PolicyLoss.KTO,
        beta=beta,
        policy_logps=policy.sum(1),
        reference_logps=reference_logps,
        label=label,
        kl=kl,
        desirable_weight=w_d,
        undesirable_weight=w_u,
    )
    assert torch.equal(via_dispatcher.losses, ours.losses)
