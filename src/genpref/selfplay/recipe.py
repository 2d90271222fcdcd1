"""Training stage of one self-play iteration: regress log π_θ(y|x) − log π_t(y|x) onto η·target."""

from __future__ import annotations

from dataclasses import dataclass
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
