"""The reference cache key of a model loaded from a folder: that folder's file fingerprint (no weight
byte read), falling back to hashing every weight for a model with no checkpoint folder."""

from __future__ import annotations

import os
import shutil

import torch
from tiny_models import tiny_llama

import genpref.policy.reference as reference
from genpref.data.encode import Encoded
from genpref.policy.model import checkpoint_fingerprint, load_policy

SEQS = [Encoded([1, 5, 6, 7], 2, False), Encoded([1, 8, 9], 1, False)]


def test_checkpoint_fingerprint_changes_only_with_the_files(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_llama(), folder)
    first = checkpoint_fingerprint(folder)
    assert first is not None and checkpoint_fingerprint(folder) == first
    weights = folder / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # rewritten (same size and header)
    assert checkpoint_fingerprint(folder) != first
    assert checkpoint_fingerprint(tmp_path) is None  # no safetensors: the caller falls back
    assert checkpoint_fingerprint(tmp_path / "missing") is None


def test_reference_cache_keys_by_files_without_reading_weights(tmp_path, monkeypatch):
    lm, tok = load_policy(tiny_llama())
    kwargs = dict(batch_size=2, packing=False, pad_id=tok.pad_token_id, progress=False)
    hashed = reference.cached_reference_logps(lm, SEQS, tmp_path / "a", **kwargs)  # fallback: every weight

    def no_weight_hash(model):
        raise AssertionError("weights hashed although the checkpoint folder is known")

    monkeypatch.setattr(reference, "weights_fingerprint", no_weight_hash)
    keyed = reference.cached_reference_logps(lm, SEQS, tmp_path / "b", source=lm.name_or_path, **kwargs)
    assert torch.equal(hashed, keyed)
    calls = []

    def counting(model, seqs, **kw):
        calls.append(1)
        return torch.zeros(len(seqs)), torch.zeros(len(seqs), dtype=torch.long)

    monkeypatch.setattr(reference, "compute_logps", counting)
    again = reference.cached_reference_logps(lm, SEQS, tmp_path / "b", source=lm.name_or_path, **kwargs)
    assert calls == [] and torch.equal(again, keyed)  # a hit
    lm.to(torch.bfloat16)  # same files, other parameter dtype: another key
    reference.cached_reference_logps(lm, SEQS, tmp_path / "b", source=lm.name_or_path, **kwargs)
    assert calls == [1]  # a miss


def test_a_folder_without_safetensors_falls_back_to_hashing_weights(tmp_path, monkeypatch):
    lm, tok = load_policy(tiny_llama())
    seen = []
    real = reference.weights_fingerprint
    monkeypatch.setattr(reference, "weights_fingerprint", lambda m: seen.append(1) or real(m))
    reference.cached_reference_logps(
        lm, SEQS, tmp_path / "c", batch_size=2, packing=False, pad_id=tok.pad_token_id, progress=False,
        source=tmp_path,
    )  # fmt: skip
    assert seen == [1]
