"""Loading a policy: any transformers causal LM, or the built-in offline ``smollm2-135m``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from genpref.errors import ConfigError
from genpref.models.backbone import BUILTIN_BACKBONES, load_tokenizer, resolve_backbone


def load_policy(
    name_or_path: str,
    *,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    attention: str = "auto",
):
    """(causal LM, tokenizer) from a built-in name, a local folder or a hub id.

    ``attention``: transformers' ``attn_implementation`` (``PolicyConfig.attention``; auto: its default).
    """
    from transformers import AutoModelForCausalLM

    path = resolve_backbone(name_or_path)
    extra = {} if attention == "auto" else {"attn_implementation": attention}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            use_safetensors=True,  # never unpickle weights
            **extra,
        )
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ConfigError(
            f"could not load policy '{name_or_path}' ({exc}).\n  fix: use a built-in name "
            f"({', '.join(n for n in BUILTIN_BACKBONES if n != 'minilm')}), a local causal-LM folder, or a hub id while online"
        ) from exc
    model.config.use_cache = False
    return model, tokenizer


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A content hash of the model's weights and config (changes whenever any weight changes)."""
    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None:
        digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def checkpoint_fingerprint(folder: str | Path) -> str | None:
    """A cheap key for the weights in a checkpoint folder, or None when it holds no safetensors files.

    Hashes config.json and, per ``*.safetensors`` file, its name, size, modification time (ns) and
    header (every tensor's name, dtype, shape and byte offsets, plus the file's metadata): any rewrite of
    a weight file changes its mtime, so no weight byte needs reading (hashing 4 GiB of weights took 10 s
    of a 1B-parameter run). Valid only for a model loaded from ``folder`` and not changed since.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256(b"checkpoint-v1")
    config = folder / "config.json"
    digest.update(config.read_bytes() if config.exists() else b"")
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        with open(file, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            digest.update(f.read(min(header_len, 100_000_000)))
    return digest.hexdigest()[:24]


def save_policy(model, tokenizer, path: Path) -> None:
    """A plain transformers folder (config, safetensors weights, tokenizer); a LoRA adapter is merged out of place.

    Weights are written with safetensors directly rather than ``save_pretrained``, which in a distributed
    run enters a collective barrier: this is called on the main process only.
    """
    from safetensors.torch import save_file

    from genpref.models.lora import merged_state_dict, unwrapped

    path.mkdir(parents=True, exist_ok=True)
    base = unwrapped(model)
    state = merged_state_dict(model)
    tied = getattr(base.config, "tie_word_embeddings", False)
    out = {k: v.detach().contiguous().cpu() for k, v in state.items() if not (tied and k == "lm_head.weight")}
    base.config.save_pretrained(path)
    if getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(path)
    save_file(out, path / "model.safetensors", metadata={"format": "pt"})
    tokenizer.save_pretrained(path)
