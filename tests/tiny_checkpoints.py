"""Tiny trained preference-model checkpoints (a few steps on synthetic pairs), built once per session."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from tiny_models import tiny_bert, tiny_llama

from genpref.data.synthetic import make_synthetic_preferences
from genpref.models.config import PreferenceModelConfig
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.rm import train_preference_model_on
from genpref.train.rm_config import RMTrainConfig

_ROOT = Path(tempfile.mkdtemp(prefix="genpref-ckpt-"))

KINDS = {
    "gpm_bert": dict(type="gpm", k=2, prompt_gate=True, backbone="bert"),
    "gpm_llama": dict(type="gpm", k=2, prompt_gate=True, backbone="llama"),
    "bt_llama": dict(type="bt", backbone="llama"),
    "bt_bert": dict(type="bt", backbone="bert"),
    "pairpm_bert": dict(type="pairpm", backbone="bert"),
}


@cache
def trained_checkpoint(kind: str) -> str:
    """Folder of a checkpoint of ``kind`` (a key of KINDS) after 2 optimizer steps; returns its path."""
    settings = dict(KINDS[kind])
    backbone = tiny_bert() if settings.pop("backbone") == "bert" else tiny_llama()
    cfg = RMTrainConfig(
        model=PreferenceModelConfig(backbone=backbone, max_length=64, **settings),
        optim=OptimConfig(lr=1e-3),
        train=TrainConfig(epochs=1, batch_size=8, progress=False, seed=0),
        output_dir=str(_ROOT / kind),
    )
    result = train_preference_model_on(cfg, make_synthetic_preferences(16, seed=2))
    return str(result.final_dir)
