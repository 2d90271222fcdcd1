"""Recipe: offline preference optimisation of a causal LM (DPO, IPO, cDPO, rDPO, hinge, SimPO, ORPO,
offline SPPO, KTO) — ``genpref po train``.

Top to bottom: load pairs (or labelled completions for KTO) → tokenise once (chat template applied
once; prompt tokens never scored) → reference log-probs once, cached on disk (skipped for
reference-free losses) → the shared loop, where each micro-batch is ONE forward of the packed
chosen + rejected sequences through ``completion_logps`` → final policy folder and evaluation.

With LoRA the reference is the base model (the adapter starts at zero), so no second copy of the
weights is ever held; ``engine.reference=live`` recomputes it every step with the adapter disabled
(LoRA) or from a frozen copy (full fine-tuning).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from genpref.data.encode import (
    Encoded,
    Truncation,
    encode_chosen_rejected,
    encode_response,
    warn_unknown_tokens,
)
from genpref.data.train_eval import load_train_eval
from genpref.data.types import CompletionExample, PreferenceExample
from genpref.distributed import all_reduce_sum
from genpref.errors import ConfigError
from genpref.losses.policy import PolicyLoss, nll_loss, policy_loss
from genpref.losses.policy_unpaired import kto_kl_estimate
from genpref.models.backbone import cache_dir, check_backbone
from genpref.models.lora import apply_lora
from genpref.policy.logprobs import PolicyLogps, completion_logps
from genpref.policy.model import load_policy, save_policy
from genpref.policy.reference import cached_reference_logps
from genpref.policy.sequences import make_batch, resolve_packing
from genpref.train.device import check_on_device, check_trainable_attention, place, resolve_precision
from genpref.train.loop import StepResult, TrainResult, finish, run_loop, start_run
from genpref.train.po_config import POTrainConfig
from genpref.train.run_dir import claim_run

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger("genpref")

POTrainResult = TrainResult  # the name before issue 16


@dataclass
class PairItem:
    chosen: Encoded
    rejected: Encoded
    prob: float  # P(chosen ≻ rejected) from the data (SPPO's soft targets)
    ref_chosen: float = 0.0
    ref_rejected: float = 0.0


@dataclass
class CompletionItem:
    seq: Encoded
    desirable: bool
    mismatched: Encoded  # this prompt with the next example's completion (KTO's KL estimate)
    ref: float = 0.0
    ref_mismatched: float = 0.0


def _row_tokens(item: PairItem | CompletionItem) -> int:
    """Tokens one training row puts through the policy (for train.group_by_length)."""
    if isinstance(item, PairItem):
        return max(len(item.chosen.input_ids), len(item.rejected.input_ids))
    return max(len(item.seq.input_ids), len(item.mismatched.input_ids))


def tokenize_pairs(
    tokenizer: PreTrainedTokenizerBase, examples: list[PreferenceExample], cfg: POTrainConfig
) -> list[PairItem]:
    items, dropped, truncated, origins = [], 0, 0, []
    for ex in examples:
        pair = encode_chosen_rejected(
            tokenizer,
            ex.prompt,
            ex.chosen,
            ex.rejected,
            max_length=cfg.policy.max_length,
            truncation=Truncation(cfg.policy.truncation),
            is_encoder=False,
        )
        if pair is None:
            dropped += 1
            continue
        truncated += int(pair[0].truncated or pair[1].truncated)
        items.append(PairItem(pair[0], pair[1], float(ex.label)))
        origins.append(ex.origin)
    warn_unknown_tokens(tokenizer, zip(origins, ((it.chosen, it.rejected) for it in items)), "pairs")
    log.info(
        f"{len(items)} pairs tokenised (max_length {cfg.policy.max_length}); {truncated} truncated, "
        f"{dropped} dropped by truncation policy '{cfg.policy.truncation}'"
    )
    return items


def tokenize_completions(
    tokenizer, examples: list[CompletionExample], cfg: POTrainConfig
) -> list[CompletionItem]:
    enc = [
        encode_response(
            tokenizer,
            ex.prompt,
            ex.completion,
            max_length=cfg.policy.max_length,
            truncation=Truncation(cfg.policy.truncation),
            is_encoder=False,
        )
        for ex in examples
    ]
    kept = [(ex, e) for ex, e in zip(examples, enc) if e is not None]
    items = []
    for i, (ex, e) in enumerate(kept):
        other = kept[(i + 1) % len(kept)][1]  # a fixed mismatch (next example), so it can be precomputed
        ids = (e.input_ids[: e.prompt_len] + other.input_ids[other.prompt_len :])[: cfg.policy.max_length]
        items.append(CompletionItem(e, bool(ex.label), Encoded(ids, e.prompt_len, False)))
    log.info(
        f"{len(items)} labelled completions tokenised; {len(examples) - len(items)} dropped by truncation"
    )
    return items


def attach_reference(
    lm: nn.Module,
    items: list[PairItem] | list[CompletionItem],
    cfg: POTrainConfig,
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    """Fill each item's reference log-probs from the on-disk cache (computed on a miss).

    ``lm`` must be unchanged since ``from_pretrained``: the cache key is then the file fingerprint of
    the folder it names (``lm.name_or_path``) rather than a hash of every weight.
    """
    paired = isinstance(items[0], PairItem)
    seqs = [s for it in items for s in ((it.chosen, it.rejected) if paired else (it.seq, it.mismatched))]
    device = next(lm.parameters()).device
    precision = resolve_precision(cfg.engine.reference_dtype, device, cfg.train.allow_slow_bf16)
    logps = cached_reference_logps(
        lm,
        seqs,
        Path(cfg.engine.cache_dir or cache_dir() / "reference_logps"),
        batch_size=cfg.engine.reference_batch_size,
        packing=cfg.engine.packing,
        pad_id=tokenizer.pad_token_id,
        dtype=torch.bfloat16 if precision == "bf16" else torch.float32,
        source=getattr(lm, "name_or_path", None) or None,
    ).tolist()
    for i, it in enumerate(items):
        if paired:
            it.ref_chosen, it.ref_rejected = logps[2 * i], logps[2 * i + 1]
        else:
            it.ref, it.ref_mismatched = logps[2 * i], logps[2 * i + 1]


class PreferenceOptimizationRecipe:
    rows_per_example = 1

    def __init__(
        self,
        cfg: POTrainConfig,
        items: list[PairItem] | list[CompletionItem],
        eval_items: list[PairItem] | list[CompletionItem],
        tokenizer: PreTrainedTokenizerBase,
        live_reference: LiveReference | None = None,
    ) -> None:
        self.cfg, self.items, self.eval_items, self.tokenizer = cfg, items, eval_items, tokenizer
        self.kind = PolicyLoss(cfg.loss.name)
        self.live_reference = live_reference  # LiveReference, or None (precomputed)
        self._placement_checked = False
        self.sft_weight = cfg.loss.sft_weight or (1.0 if self.kind.requires_sft_term else 0.0)

    def _logps(
        self, model: nn.Module, seqs: list[Encoded], device: torch.device | str
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        if not self._placement_checked:  # once: every model this step uses sits on the step's device
            live = [("the live reference", self.live_reference.module)] if self.live_reference else []
            check_on_device([("the policy", model), *live], device)
            self._placement_checked = True
        batch = make_batch(
            seqs, packing=self.cfg.engine.packing, pad_id=self.tokenizer.pad_token_id, device=device
        )
        sums, counts = model(**batch)
        ref = None
        if self.live_reference is not None:
            with torch.no_grad():
                ref, _ = self.live_reference(batch)
        return sums, counts, ref

    def micro_step(self, model: nn.Module, indices: list[int], device: torch.device | str) -> StepResult:
        items = [self.items[i] for i in indices]
        if self.kind is PolicyLoss.KTO:
            return self._kto_step(model, items, device)
        b = len(items)
        sums, counts, live_ref = self._logps(
            model, [it.chosen for it in items] + [it.rejected for it in items], device
        )
        if live_ref is None:
            ref = torch.tensor(
                [it.ref_chosen for it in items] + [it.ref_rejected for it in items], device=device
            )
        else:
            ref = live_ref
        policy, reference = sums, ref
        if self.kind.length_normalized:  # IPO (TRL convention), SimPO, ORPO: per-token averages
            policy, reference = sums / counts.clamp_min(1), ref / counts.clamp_min(1)
        prob = torch.tensor([it.prob for it in items], device=device)
        out = policy_loss(
            self.kind,
            beta=self.cfg.loss.beta,
            label_smoothing=self.cfg.loss.label_smoothing,
            gamma=self.cfg.loss.gamma,
            policy_chosen_logps=policy[:b],
            policy_rejected_logps=policy[b:],
            reference_chosen_logps=reference[:b],
            reference_rejected_logps=reference[b:],
            chosen_win_prob=prob,
            rejected_win_prob=1 - prob,
        )
        losses = out.losses
        if self.sft_weight:
            losses = losses + self.sft_weight * nll_loss(sums[:b], counts[:b])
        stats = {
            "rewards_chosen": out.chosen_rewards,
            "rewards_rejected": out.rejected_rewards,
            "margin": out.chosen_rewards - out.rejected_rewards,
            "accuracy": (out.chosen_rewards > out.rejected_rewards).float(),
            "logps_chosen": sums[:b].detach(),
            "logps_rejected": sums[b:].detach(),
        }
        if self.kind.needs_reference:
            logratio = (sums - ref).detach()  # (2B,) log π − log π_ref
            stats["kl"] = 0.5 * (logratio[:b] + logratio[b:])  # off-policy estimate on the data's completions
        return StepResult(losses, stats)

    def _kto_step(
        self, model: nn.Module, items: list[CompletionItem], device: torch.device | str
    ) -> StepResult:
        b = len(items)
        sums, counts, live_ref = self._logps(
            model, [it.seq for it in items] + [it.mismatched for it in items], device
        )
        ref = (
            live_ref
            if live_ref is not None
            else torch.tensor([it.ref for it in items] + [it.ref_mismatched for it in items], device=device)
        )
        kl_sum = (sums[b:] - ref[b:]).detach().sum()
        kl_n = torch.tensor(float(b), device=device)
        all_reduce_sum(kl_sum, kl_n)  # the global batch's estimate
        z_ref = kto_kl_estimate(kl_sum / kl_n, torch.zeros((), device=device))
        label = torch.tensor([it.desirable for it in items], device=device)
        out = policy_loss(
            self.kind,
            beta=self.cfg.loss.beta,
            policy_logps=sums[:b],
            reference_logps=ref[:b],
            label=label,
            kl=z_ref,
            desirable_weight=self.cfg.loss.desirable_weight,
            undesirable_weight=self.cfg.loss.undesirable_weight,
        )
        losses = out.losses
        if self.sft_weight:
            losses = losses + self.sft_weight * nll_loss(sums[:b], counts[:b]) * label.float()
        return StepResult(
            losses,
            {
                "rewards": out.rewards,
                "kl": z_ref.expand(b),
                "desirable": label.float(),
                "logps": sums[:b].detach(),
            },
        )

    def save_model(self, model: nn.Module, path: Path) -> None:
        lm = model.lm if isinstance(model, PolicyLogps) else model
        save_policy(lm, self.tokenizer, path)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, accelerator: Accelerator | None) -> dict[str, float]:
        if not self.eval_items:
            return {}
        was = model.training
        model.eval()
        saved, self.items = self.items, self.eval_items
        totals: dict[str, float] = {}
        size = self.cfg.eval_batch_size
        for start in range(0, len(self.eval_items), size):
            idx = list(range(start, min(start + size, len(self.eval_items))))
            out = self.micro_step(model, idx, accelerator.device if accelerator else "cpu")
            for k, v in {"loss": out.losses, **out.stats}.items():
                totals[k] = totals.get(k, 0.0) + float(v.sum())
        self.items = saved
        model.train(was)
        return {k: v / len(self.eval_items) for k, v in totals.items()}


def load_po_data(
    cfg: POTrainConfig, output_dir: Path, kind: PolicyLoss
) -> tuple[list[PreferenceExample] | list[CompletionExample], list]:
    """Training and evaluation rows: pairs, or labelled completions for KTO (``genpref.data.train_eval``)."""
    from genpref.data.completions import load_completions
    from genpref.data.load import load_preferences

    loader = load_preferences if kind.paired else load_completions
    examples, evals = load_train_eval(cfg.data, loader, output_dir, seed=cfg.train.seed)
    if not kind.paired and any(ex.label is None for ex in examples):
        raise ConfigError(
            f"{cfg.data.train}: loss=kto needs a boolean 'label' on every prompt/completion row "
            "(or preference pairs, which are unpaired automatically)"
        )
    return examples, evals


def train_policy(cfg: POTrainConfig) -> TrainResult:
    """``genpref po train``: load and validate the configured data, then optimise."""
    output_dir = Path(cfg.output_dir)
    with claim_run(cfg):  # before the rejects file is written
        examples, evals = load_po_data(cfg, output_dir, PolicyLoss(cfg.loss.name))
        return train_policy_on(cfg, examples, evals)


def train_policy_on(
    cfg: POTrainConfig,
    examples: list[PreferenceExample] | list[CompletionExample],
    eval_examples: list[PreferenceExample] | list[CompletionExample] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Optimise on in-memory pairs (or labelled completions for KTO); ``cfg.data`` is ignored.

    ``overwrite`` (or ``cfg.overwrite``): delete an existing run in ``cfg.output_dir`` first."""
    if cfg.train.finetune == "frozen":
        raise ConfigError("train.finetune=frozen trains nothing in a policy.\n  fix: use full or lora")
    check_backbone(
        cfg.policy.model,
        cfg.policy.max_length,
        field="policy.max_length",
        trust_remote_code=cfg.policy.trust_remote_code,
    )
    with claim_run(cfg, overwrite):
        return _train_policy(cfg, examples, eval_examples or [])


def _train_policy(
    cfg: POTrainConfig,
    examples: list[PreferenceExample] | list[CompletionExample],
    eval_examples: list[PreferenceExample] | list[CompletionExample],
) -> TrainResult:
    kind = PolicyLoss(cfg.loss.name)
    output_dir = Path(cfg.output_dir)
    acc, resume_from = start_run(cfg, cfg.train, output_dir, cfg.resume)
    torch.manual_seed(cfg.train.seed)
    lm, tokenizer = load_policy(
        cfg.policy.model, trust_remote_code=cfg.policy.trust_remote_code, attention=cfg.policy.attention
    )
    check_trainable_attention(lm, acc.device)
    cfg = replace(cfg, engine=replace(cfg.engine, packing=resolve_packing(cfg.engine.packing, lm)))
    tokenize = tokenize_pairs if kind.paired else tokenize_completions
    items, eval_items = (
        tokenize(tokenizer, examples, cfg),
        (tokenize(tokenizer, eval_examples, cfg) if eval_examples else []),
    )
    if not items:
        raise ConfigError("no usable training rows after tokenisation")
    live = None
    if kind.needs_reference and cfg.engine.reference == "precompute":
        place(lm, acc.device)
        for part in (items, eval_items):
            if part:
                attach_reference(lm, part, cfg, tokenizer)
    if cfg.train.finetune == "lora":
        lm = apply_lora(lm, cfg.train.lora)
    if cfg.train.gradient_checkpointing:
        lm.gradient_checkpointing_enable()
    if kind.needs_reference and cfg.engine.reference == "live":
        _check_live_reference_placement(acc, cfg)
        live = LiveReference(lm, cfg, acc.device, acc.autocast)
    recipe = PreferenceOptimizationRecipe(cfg, items, eval_items, tokenizer, live)
    model = PolicyLogps(lm, cfg.engine.logprob_chunk, compile=cfg.engine.compile)
    result = run_loop(
        acc,
        model,
        recipe,
        len(items),
        cfg.train,
        cfg.optim,
        output_dir,
        resume_from,
        desc=f"po {kind.value}",
        lengths=[_row_tokens(it) for it in items],
    )
    eval_metrics = recipe.evaluate(acc.unwrap_model(model), acc)
    return finish(acc, result, output_dir, eval_metrics, eval_metrics)


def _check_live_reference_placement(acc: Accelerator, cfg: POTrainConfig) -> None:
    """A frozen full copy of the policy cannot live beside a sharded one: refuse it under FSDP / ZeRO-3."""
    from accelerate.utils import DistributedType

    plugin = getattr(acc.state, "deepspeed_plugin", None)
    sharded = acc.distributed_type == DistributedType.FSDP or (
        acc.distributed_type == DistributedType.DEEPSPEED and plugin is not None and plugin.zero_stage == 3
    )
    if sharded and cfg.train.finetune == "full":
        raise ConfigError(
            "engine.reference=live with full fine-tuning would keep an unsharded reference copy under FSDP/ZeRO-3.\n"
            "  fix: use engine.reference=precompute (the default: reference log-probs computed once before sharding), "
            "or train.finetune=lora (the reference is the adapter-free model itself)"
        )


class LiveReference:
    """A per-step reference on ``device``: the adapter-disabled policy (LoRA) or a frozen copy (full
    fine-tuning). The frozen copy is created outside ``accelerator.prepare``, so it is placed here, and it
    runs under the same autocast as the policy (the reference pass of TRL's trainer does the same)."""

    def __init__(
        self,
        lm: nn.Module,
        cfg: POTrainConfig,
        device: torch.device | str,
        autocast: Callable[[], AbstractContextManager],
    ) -> None:
        self.lora = hasattr(lm, "disable_adapter")
        self.module = lm if self.lora else place(copy.deepcopy(lm).eval().requires_grad_(False), device)
        self.chunk, self.autocast = cfg.engine.logprob_chunk, autocast

    def __call__(self, batch: dict) -> tuple[Tensor, Tensor]:
        with self.autocast(), self.module.disable_adapter() if self.lora else nullcontext():
            return completion_logps(self.module, **batch, chunk=self.chunk)
