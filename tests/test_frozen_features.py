"""Frozen-backbone feature caching: the cached run takes the same steps as running the frozen backbone
at every step (encoder and decoder, gated GPM, BT, PairPM), each distinct sequence is run once, and a
cache that would silently drop dropout is refused."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import tiny_bert, tiny_llama

import genpref.train.rm as rm
from genpref.data.synthetic import make_synthetic_preferences
from genpref.data.types import PreferenceExample
from genpref.errors import ConfigError
from genpref.models.config import PreferenceModelConfig
from genpref.models.frozen_features import FrozenFeatures
from genpref.models.preference_model import PreferenceModel
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.metrics import read_metrics
from genpref.train.rm_config import RMTrainConfig

DATA = make_synthetic_preferences(24, seed=2)


def _cfg(out, backbone: str, cached: bool, **model) -> RMTrainConfig:
    return RMTrainConfig(
        model=PreferenceModelConfig(backbone=backbone, max_length=64, **model),
        optim=OptimConfig(lr=1e-3, head_lr=5e-2, warmup_ratio=0.1),
        train=TrainConfig(epochs=3, batch_size=4, log_every=1, progress=False, seed=5, finetune="frozen"),
        cache_frozen_features=cached,
        output_dir=str(out),
    )


@pytest.mark.parametrize(
    "backbone, model",
    [
        (tiny_bert, dict(type="gpm", k=2, prompt_gate=True)),
        (tiny_llama, dict(type="gpm", k=2, prompt_gate=True)),
        (tiny_bert, dict(type="bt")),
        (tiny_llama, dict(type="pairpm")),
    ],
    ids=["gpm-gate-encoder", "gpm-gate-decoder", "bt", "pairpm"],
)
def test_cached_features_train_exactly_like_the_frozen_backbone(tmp_path, backbone, model):
    runs = {}
    for cached in (False, True):
        cfg = _cfg(tmp_path / str(cached), backbone(), cached, **model)
        result = rm.train_preference_model_on(cfg, DATA)
        losses = [r["loss"] for r in read_metrics(result.metrics_path) if "loss" in r]
        runs[cached] = (losses, load_file(result.final_dir / "model.safetensors"))
    (loss_a, w_a), (loss_b, w_b) = runs[False], runs[True]
    assert len(loss_a) == 18 and loss_a == pytest.approx(loss_b, abs=1e-5)
    assert loss_a[-1] != pytest.approx(loss_a[0], abs=1e-3)  # the heads did train
    assert w_a.keys() == w_b.keys()
    for key in w_a:
        assert torch.allclose(w_a[key], w_b[key], atol=1e-5), key


def test_each_distinct_sequence_and_prompt_is_run_once_and_batches_follow_collate(tmp_path):
    """Three comparisons over three distinct sequences of one prompt: a gated encoder spends three
    sequence forwards and one prompt-only forward, and a cached batch gives the collated batch's logits."""
    model = PreferenceModel.from_config(
        PreferenceModelConfig(type="gpm", k=2, prompt_gate=True, backbone=tiny_bert(), max_length=64)
    )
    rows = [
        PreferenceExample("Pick one.", "cat", "dog", label=0.9),
        PreferenceExample("Pick one.", "dog", "cat", label=0.1),  # the same two sequences
        PreferenceExample("Pick one.", "fish", "cat", label=0.3),
    ]
    feats = [model.featurize(r) for r in rows]
    model.forward_count = 0
    cache = FrozenFeatures(model, feats, batch_size=2)
    assert cache.distinct == 3 and model.forward_count == 3 + 1
    batch = cache.batch([2, 0])
    assert batch["pooled"].shape == (4, 32) and batch["prompt_state"].shape == (2, 32)
    assert batch["label"].tolist() == pytest.approx([0.3, 0.9])
    collated = model.collate([feats[2], feats[0]])
    with torch.no_grad():
        direct = model(**collated)["logits"]
        from_cache = model(**batch)["logits"]
    assert torch.allclose(direct, from_cache, atol=1e-6)
    with pytest.raises(ValueError, match="prompt_state"):
        model(pooled=batch["pooled"], label=batch["label"], margin=batch["margin"])


def test_cache_with_dropout_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="cache_frozen_features: false"):
        RMTrainConfig(train=TrainConfig(finetune="frozen", disable_dropout=False), output_dir=str(tmp_path))
    RMTrainConfig(  # without the cache, dropout on a frozen backbone stays possible
        train=TrainConfig(finetune="frozen", disable_dropout=False), cache_frozen_features=False
    )
