"""Reference-model log-probabilities: computed once in inference mode and cached on disk.

The cache key hashes the reference weights (or, for a model loaded from a checkpoint folder and not
changed since, that folder's file fingerprint: see ``checkpoint_fingerprint``), every tokenised sequence (ids and prompt boundary) and
the compute dtype, so a changed model, dataset, template or truncation invalidates it automatically;
the same run resumed, a second epoch or a second run on the same data reuse it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from genpref.data.encode import Encoded
from genpref.policy.logprobs import completion_logps, shared_prompt_logps
from genpref.policy.model import checkpoint_fingerprint, weights_fingerprint
from genpref.policy.sequences import make_batch, shared_prompt_groups

log = logging.getLogger("genpref")


def sequences_fingerprint(seqs: Sequence[Encoded]) -> str:
    digest = hashlib.sha256()
    for s in seqs:
        digest.update(len(s.input_ids).to_bytes(4, "little"))
        digest.update(s.prompt_len.to_bytes(4, "little"))
        digest.update(torch.tensor(s.input_ids, dtype=torch.int32).numpy().tobytes())
    return digest.hexdigest()[:24]


@torch.inference_mode()
def compute_logps(
    model,
    seqs: Sequence[Encoded],
    *,
    batch_size: int,
    packing: bool,
    pad_id: int,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    share_prompt: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probs (N,) and completion token counts (N,) of each sequence.

    The sequences are batched in order of length (each value is per sequence, so the order is free):
    padded batches then hold sequences of similar length and spend little compute on padding.
    ``share_prompt``: sequences of the same prompt are batched together and each distinct prompt of a
    batch runs once (``policy.logprobs.shared_prompt_logps``; self-play's K samples per prompt), which
    ignores ``packing``.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    if share_prompt:  # a prompt's sequences side by side, shortest prompts first
        key = lambda i: (seqs[i].prompt_len, seqs[i].input_ids[: seqs[i].prompt_len], len(seqs[i].input_ids))  # noqa: E731
    else:
        key = lambda i: len(seqs[i].input_ids)  # noqa: E731
    order = sorted(range(len(seqs)), key=key)
    sums = torch.zeros(len(seqs), dtype=torch.float32)
    counts = torch.zeros(len(seqs), dtype=torch.long)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
    for start in tqdm(
        range(0, len(seqs), batch_size), desc="reference log-probs", disable=not progress, leave=False
    ):
        chunk = order[start : start + batch_size]
        with autocast:
            if share_prompt:
                s, c = shared_prompt_logps(
                    model, **shared_prompt_groups([seqs[i] for i in chunk], pad_id, device)
                )
            else:
                batch = make_batch([seqs[i] for i in chunk], packing=packing, pad_id=pad_id, device=device)
                s, c = completion_logps(model, **batch)
        sums[chunk] = s.float().cpu()
        counts[chunk] = c.cpu()
    model.train(was_training)
    return sums, counts


def cached_reference_logps(
    model,
    seqs: Sequence[Encoded],
    cache_dir: Path,
    *,
    batch_size: int,
    packing: bool,
    pad_id: int,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    source: str | Path | None = None,
) -> torch.Tensor:
    """Reference log-probs of ``seqs`` from the cache, computing and storing them on a miss.

    ``source``: the folder ``model`` was loaded from, unchanged since; its file fingerprint (plus the
    parameters' dtypes) then keys the weights. Otherwise, or when it holds no safetensors, every weight
    is hashed.
    """
    files = checkpoint_fingerprint(source) if source is not None else None
    if files is not None:
        dtypes = sorted({str(p.dtype) for p in model.parameters()})
        weights = hashlib.sha256(f"{files}-{dtypes}".encode()).hexdigest()[:24]
    else:
        weights = weights_fingerprint(model)
    key = f"{weights}-{sequences_fingerprint(seqs)}-{str(dtype).split('.')[-1]}"
    path = Path(cache_dir) / f"{key}.safetensors"
    if path.exists():
        log.info(f"reference log-probs: cache hit {path}")
        return load_file(path)["logps"]
    log.info(f"reference log-probs: computing {len(seqs)} sequences once (cache {path})")
    sums, _ = compute_logps(
        model, seqs, batch_size=batch_size, packing=packing, pad_id=pad_id, dtype=dtype, progress=progress
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({"logps": sums.contiguous()}, tmp)
    os.replace(tmp, path)
    return sums
