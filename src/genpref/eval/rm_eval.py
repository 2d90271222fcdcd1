"""Evaluate a preference model on comparison data (``genpref rm eval``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genpref.distributed import gather_uneven, shard
from genpref.eval.metrics import pairwise_consistency, per_subset_metrics
from genpref.eval.rewardbench import is_rewardbench_subset, section_scores


@torch.inference_mode()
def predict_features(
    model, features: Sequence, batch_size: int = 32, accelerator=None
) -> dict[str, torch.Tensor]:
    """P(chosen ≻ rejected) for every comparison (PairPM: also P(rejected ≻ chosen) from the swapped order).

    With an accelerator, each process scores a contiguous shard and the results are gathered.
    """
    was_training = model.training
    model.eval()
    idx = list(range(len(features)))
    if accelerator is not None and accelerator.num_processes > 1:
        idx = shard(idx, accelerator.process_index, accelerator.num_processes)
    device = model.head.weight.device
    probs, swapped = [], []
    for start in range(0, len(idx), batch_size):
        feats = [features[i] for i in idx[start : start + batch_size]]
        batch = {k: v.to(device) for k, v in model.collate(feats).items()}
        if accelerator is not None:
            with accelerator.autocast():
                out = model(**batch)
        else:
            out = model(**batch)
        p = torch.sigmoid(out["logits"].float())
        n = len(feats)
        probs.append(p[:n])
        if p.shape[0] == 2 * n:  # PairPM: the second half is P(rejected ≻ chosen)
            swapped.append(p[n:])
    result = {"prob_chosen": torch.cat(probs) if probs else torch.empty(0, device=device)}
    if swapped:
        result["prob_swapped"] = torch.cat(swapped)
    if accelerator is not None and accelerator.num_processes > 1:
        result = {k: gather_uneven(accelerator, v) for k, v in result.items()}
    model.train(was_training)
    return {k: v.cpu() for k, v in result.items()}


def evaluate_features(model, features: Sequence, batch_size: int = 32, accelerator=None) -> dict:
    """Accuracy (a tie counts as wrong), mean P(chosen), log-loss, calibration, per-subset table,
    RewardBench sections when the subsets are RewardBench's, and PairPM order consistency."""
    pred = predict_features(model, features, batch_size, accelerator)
    label = torch.tensor([f.label for f in features])
    subsets = [f.subset for f in features]
    table = per_subset_metrics(pred["prob_chosen"], subsets, label)
    result: dict = {"overall": table.pop("all"), "subsets": table}
    rb = {name: m["accuracy"] for name, m in table.items() if is_rewardbench_subset(name)}
    if rb:
        result["rewardbench"] = section_scores(rb)
    if "prob_swapped" in pred:
        result["pairpm_consistency"] = pairwise_consistency(pred["prob_chosen"], pred["prob_swapped"])
    result["prob_chosen"] = pred["prob_chosen"].tolist()
    return result
