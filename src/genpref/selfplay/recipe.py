"""Training stage of one self-play iteration: regress log π_θ(y|x) − log π_t(y|x) onto η·target."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from genpref.data.encode import Encoded
from genpref.losses.selfplay import selfplay_square_loss
from genpref.policy.logprobs import PolicyLogps
from genpref.policy.model import save_policy
from genpref.policy.sequences import make_batch, shared_prompt_groups
from genpref.train.loop import StepResult


@dataclass
class SelfPlayItem:
    seq: Encoded  # prompt ids + sampled response ids (exactly the generated tokens)
    ref_logp: float  # log π_t(y|x) recorded during generation (T = 1)
    target: float  # SPPO: P̂ − ½; GPO: s(y ≻ π_t)
    prompt_index: int = -1  # which prompt of the iteration (diagnostics group by it)
    weight: float = 1.0  # loss weight (``weighting: distinct``: 1/n(y), see distinct_response_weights)


def merge_duplicates(items: list[SelfPlayItem]) -> list[SelfPlayItem]:
    """One training row per distinct (prompt, response, target, log π_t), weighted by its copies.

    A response sampled n times contributes n identical square losses (the same log-ratio, target and
    weight), so the sum over its copies is one row with n times the weight: the gradient is the same
    and the forward/backward runs once. Short answers repeat a lot (``genpref bench nash`` draws 256
    two-token answers of which ~1/4 are distinct), long ones rarely, so this is free either way.

    The training loop averages per-row losses over the rows of a step, so the merged weights are
    rescaled by M/N (M rows from N samples) to keep the loss of a full-batch step exactly the same.
    Targets and log π_t are compared at 1e-6 / 1e-4 (a judge's batched arithmetic can differ in the
    last bits between copies); copies that differ more stay separate rows.

    Example: items a, a, b with weights 1, 1, 2 (N = 3) merge into a, b with weights (2, 2)·2/3.
    """
    merged: dict[tuple, SelfPlayItem] = {}
    for it in items:
        key = (
            tuple(it.seq.input_ids),
            it.seq.prompt_len,
            round(it.target, 6),
            round(it.ref_logp, 4),
            it.prompt_index,
        )
        if key in merged:
            merged[key].weight += it.weight
        else:
            merged[key] = replace(it)
    rows = list(merged.values())
    scale = len(rows) / max(len(items), 1)
    for row in rows:
        row.weight *= scale
    return rows


class SelfPlayRecipe:
    rows_per_example = 1
    progress_keys = ("target_mse",)
    """The progress bar shows the loss in target units, (ρ/η − g)² = loss / η² (the raw loss grows with
    η², 10^5–10^6 at η = 1000, and reads as nothing); the raw loss is in metrics.jsonl as ``loss``."""

    def __init__(
        self,
        items: list[SelfPlayItem],
        tokenizer,
        eta: float,
        length_normalized: bool,
        packing: bool,
        share_prompt: bool = False,
    ) -> None:
        self.items, self.tokenizer = items, tokenizer
        self.eta, self.length_normalized, self.packing = eta, length_normalized, packing
        self.share_prompt = share_prompt

    def _batch(self, items: list[SelfPlayItem], device) -> dict:
        seqs, pad_id = [it.seq for it in items], self.tokenizer.pad_token_id
        if not self.share_prompt:
            return make_batch(seqs, packing=self.packing, pad_id=pad_id, device=device)
        return {"shared": shared_prompt_groups(seqs, pad_id, device)}

    def micro_step(self, model, indices: list[int], device) -> StepResult:
        items = [self.items[i] for i in indices]
        logps, counts = model(**self._batch(items, device))  # (N,), (N,)
        ref = torch.tensor([it.ref_logp for it in items], device=device)
        target = torch.tensor([it.target for it in items], device=device)
        weight = torch.tensor([it.weight for it in items], device=device, dtype=logps.dtype)
        losses = weight * selfplay_square_loss(
            logps, ref, target, self.eta, counts if self.length_normalized else None
        )
        stats = {
            "log_ratio": (logps - ref).detach(),
            "target": target,
            "target_mse": losses.detach() / self.eta**2,
        }
        return StepResult(losses, stats)

    def save_model(self, model, path: Path) -> None:
        save_policy(model.lm if isinstance(model, PolicyLogps) else model, self.tokenizer, path)

    def evaluate(self, model, accelerator) -> dict[str, float]:
        return {}
