"""Export genpref checkpoints to other tools' formats (``genpref rm export``).

* ``hf-seqcls``: a BT model on a causal decoder as a plain transformers
  ``AutoModelForSequenceClassification`` folder (``num_labels = 1``): the backbone weights, the head as
  the classifier's ``score`` row (divided by τ, so the exported reward is r/τ and
  P(a ≻ b) = σ(r_a − r_b) as every BT consumer assumes; τ = 1 by default, so the reward is r). The
  classifier reads the last non-padding token, which is genpref's last-token pooling, provided the pad
  token never occurs in a sequence: when the tokenizer pads with its EOS (as SmolLM2 and Llama do, and
  genpref sequences end with EOS), a dedicated ``<|genpref_pad|>`` token is added. TRL, OpenRLHF and
  transformers load the folder without genpref. Encoders (mean pooling, no pooler) have no such class.
* ``paper``: a GPM on a causal decoder in the layout of the GPM authors' released checkpoints (the
  inverse of ``genpref.models.paper``): decoder weights under the architecture's base prefix,
  ``value_head.weight`` [2k, H], ``prompt_head.weight`` [k, H]; τ is kept in ``config.json`` as
  ``gpm_tau``. genpref's sign convention (``sign = −1``) is folded into the value head by negating its
  odd rows, which negates every block's cross product.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import save_file

from genpref.errors import ConfigError
from genpref.models.preference_model import PreferenceModel

PAD_TOKEN = "<|genpref_pad|>"


def _require(ok: bool, model_dir: str, what: str, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{model_dir}: {what}\n  fix: {fix}")


def _backbone_state(model: PreferenceModel) -> dict[str, torch.Tensor]:
    prefix = "backbone."
    return {k[len(prefix) :]: v for k, v in model.state_dict_for_save().items() if k.startswith(prefix)}


def _prepare_output(output: str | Path) -> Path:
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty\n  fix: choose a new --output folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def to_hf_seqcls(model: PreferenceModel, output: str | Path, model_dir: str = "<model>") -> Path:
    """Write a BT decoder as an ``AutoModelForSequenceClassification`` folder (module docstring)."""
    from transformers import AutoModelForSequenceClassification

    c = model.config
    _require(
        c.type == "bt",
        model_dir,
        f"hf-seqcls exports BT models; this is {c.type}.",
        "use --format paper for a GPM",
    )
    _require(
        not model.is_encoder and model.pooling == "last",
        model_dir,
        "hf-seqcls needs a causal decoder read at its last token (an encoder's mean pooling has no "
        "AutoModelForSequenceClassification equivalent).",
        "train the BT model on a decoder backbone (e.g. smollm2-135m)",
    )
    _require(
        not c.head_bias,
        model_dir,
        "the head has a bias; the classifiers have none.",
        "train with model.head_bias false",
    )
    out = _prepare_output(output)
    tokenizer = model.tokenizer
    hf_config = type(model.backbone.config).from_dict(model.backbone.config.to_dict())
    hf_config.num_labels = 1
    seqcls = AutoModelForSequenceClassification.from_config(hf_config, dtype=torch.float32)
    seqcls.base_model.load_state_dict(_backbone_state(model))
    head_names = [n for n, _ in seqcls.named_parameters() if not n.startswith(seqcls.base_model_prefix + ".")]
    _require(
        len(head_names) == 1,
        model_dir,
        f"unexpected classifier parameters {head_names}.",
        "report this architecture",
    )
    with torch.no_grad():
        seqcls.get_parameter(head_names[0]).copy_(model.head.weight.float() / c.temperature)
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer = copy.deepcopy(tokenizer)  # the live model keeps its own
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        seqcls.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    seqcls.config.pad_token_id = tokenizer.pad_token_id
    seqcls.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def to_paper(model: PreferenceModel, output: str | Path, model_dir: str = "<model>") -> Path:
    """Write a GPM decoder in the released paper layout (module docstring); ``from_paper_checkpoint`` reads it."""
    c = model.config
    _require(
        c.type == "gpm",
        model_dir,
        f"the paper layout holds GPM models; this is {c.type}.",
        "use --format hf-seqcls for BT",
    )
    _require(
        not model.is_encoder and model.pooling == "last",
        model_dir,
        "the paper layout is a causal decoder read at its last token.",
        "train the GPM on a decoder backbone (e.g. smollm2-135m)",
    )
    _require(
        c.l2_normalize,
        model_dir,
        "the paper's models L2-normalise embeddings; this one does not.",
        "train with model.l2_normalize true",
    )
    _require(
        not c.head_bias,
        model_dir,
        "the head has a bias; the paper's value head has none.",
        "train with model.head_bias false",
    )
    out = _prepare_output(output)
    value_head = model.head.weight.detach().float().cpu().clone()  # (2k, H)
    if c.sign == -1:
        value_head[1::2] *= -1  # v → (even, −odd) negates a_even·b_odd − a_odd·b_even; norms unchanged
    prefix = model.backbone.base_model_prefix
    state = {f"{prefix}.{k}": v for k, v in _backbone_state(model).items()}
    state["value_head.weight"] = value_head
    if model.prompt_head is not None:
        state["prompt_head.weight"] = model.prompt_head.weight.detach().float().cpu().clone()
    hf_config = model.backbone.config
    hf_config.save_pretrained(out)
    config_file = out / "config.json"
    config_json = json.loads(config_file.read_text())
    config_json["gpm_tau"] = c.temperature
    config_file.write_text(json.dumps(config_json, indent=2))
    model.tokenizer.save_pretrained(out)
    save_file(
        {k: v.contiguous() for k, v in state.items()}, out / "model.safetensors", metadata={"format": "pt"}
    )
    return out


def export_checkpoint(model_dir: str, output: str, format: Literal["hf-seqcls", "paper"]) -> Path:
    """Load a genpref checkpoint and write it in ``format``; a failed export leaves no folder behind."""
    model = PreferenceModel.from_pretrained(model_dir)
    existed = Path(output).exists()
    writer = {"hf-seqcls": to_hf_seqcls, "paper": to_paper}[format]
    try:
        return writer(model, output, model_dir)
    except Exception:
        if not existed:
            shutil.rmtree(output, ignore_errors=True)
        raise
