"""Import GPM weights laid out as in the paper authors' released checkpoints.

The released GPM models (e.g. ``general-preference/GPM-Llama-3.1-8B``) are causal-LM checkpoints
whose state dict holds the decoder under the model's base prefix (``model.`` for Llama) plus:

* ``value_head.weight``  [2k, H]: the embedding head (no bias), L2-normalised at the last token;
* ``prompt_head.weight`` [k, H] (optional): the eigenvalue gate, softmax over the k blocks of the
  hidden state at the prompt's last token;

with P = σ(s/τ), τ = 0.1 and s = ⟨R^≻ v_a, v_b⟩, R blocks [[0, −1], [1, 0]] (sign +1 here).
This module maps that layout onto ``PreferenceModel`` (head ← value_head, prompt_head ← prompt_head).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from genpref.errors import ConfigError
from genpref.models.backbone import Backbone, load_tokenizer
from genpref.models.config import PreferenceModelConfig
from genpref.models.preference_model import PreferenceModel


def from_paper_state_dict(
    state_dict: dict[str, Tensor],
    hf_config,
    tokenizer,
    *,
    tau: float | None = None,
    max_length: int = 4096,
    base_prefix: str | None = None,
) -> PreferenceModel:
    """Build a GPM ``PreferenceModel`` from a paper-layout state dict.

    Args:
        state_dict: backbone weights under ``base_prefix`` + ``value_head.weight`` (+ ``prompt_head.weight``).
        hf_config: the transformers config of the causal LM.
        tokenizer: its tokenizer.
        tau: temperature; default ``gpm_tau`` from the config (written by ``genpref rm export --format
            paper``), else 0.1 as in the paper's code.
        base_prefix: prefix of the decoder weights (default: the architecture's base_model_prefix).
    """
    from transformers import AutoModel

    if "value_head.weight" not in state_dict:
        raise ConfigError("not a GPM checkpoint: no 'value_head.weight' in the state dict")
    value_head = state_dict["value_head.weight"]
    if value_head.shape[0] % 2:
        raise ConfigError(f"value_head.weight has {value_head.shape[0]} rows; a GPM head needs 2k rows")
    k = value_head.shape[0] // 2
    prompt_head = state_dict.get("prompt_head.weight")
    if prompt_head is not None and prompt_head.shape[0] != k:
        raise ConfigError(f"prompt_head.weight has {prompt_head.shape[0]} rows, expected k = {k}")
    backbone_model = AutoModel.from_config(hf_config)
    prefix = (base_prefix or backbone_model.base_model_prefix) + "."
    body = {key[len(prefix) :]: v for key, v in state_dict.items() if key.startswith(prefix)}
    missing, unexpected = backbone_model.load_state_dict(body, strict=False)
    missing = [m for m in missing if "rotary" not in m and not m.endswith("position_ids")]
    if missing:
        raise ConfigError(f"paper checkpoint lacks backbone weights, e.g. {missing[:3]} (prefix '{prefix}')")
    tau = getattr(hf_config, "gpm_tau", 0.1) if tau is None else tau
    config = PreferenceModelConfig(
        type="gpm",
        backbone=getattr(hf_config, "_name_or_path", "") or "paper-gpm",
        architecture="decoder",
        pooling="last",
        k=k,
        prompt_gate=prompt_head is not None and k > 1,  # a 1-block gate is identically 1
        l2_normalize=True,
        tau=tau,
        sign=1,
        max_length=max_length,
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = PreferenceModel(config, Backbone(backbone_model, tokenizer, False, config.backbone))
    with torch.no_grad():
        model.head.weight.copy_(value_head)
        if model.prompt_head is not None:
            model.prompt_head.weight.copy_(prompt_head)
    return model.eval()


def from_paper_checkpoint(path: str | Path, **kwargs) -> PreferenceModel:
    """Load a released GPM checkpoint folder (config.json, tokenizer, *.safetensors shards)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    path = Path(path)
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        raise ConfigError(f"{path}: no .safetensors files (genpref never loads pickled weights)")
    state: dict[str, Tensor] = {}
    for shard in shards:
        state.update(load_file(shard))
    return from_paper_state_dict(state, AutoConfig.from_pretrained(path), load_tokenizer(str(path)), **kwargs)
