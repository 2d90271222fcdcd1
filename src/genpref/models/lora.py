"""LoRA (peft) on a backbone, and out-of-place merging for plain safetensors checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft)."""

    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """Scaling numerator (scale = alpha / r)."""
    dropout: float = 0.0
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt; ["all-linear"] adapts every linear layer of the backbone."""


def unwrapped(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper, or ``model`` itself when it has none."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def apply_lora(backbone: nn.Module, settings: LoraSettings) -> nn.Module:
    """Wrap a transformers base model with a trainable LoRA adapter (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    targets = settings.target_modules
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets[0] if targets == ["all-linear"] else targets,
    )
    return get_peft_model(backbone, config)


def merged_state_dict(module: nn.Module) -> dict[str, Tensor]:
    """State dict of the base model with every LoRA delta added, computed without mutating weights.

    For a plain module this is just its state dict.
    """
    if not hasattr(module, "get_base_model"):
        return module.state_dict()
    from peft.tuners.lora import LoraLayer

    base = module.get_base_model()
    state = {}
    for key, value in base.state_dict().items():
        if "lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value
    for name, sub in base.named_modules():
        if isinstance(sub, LoraLayer):
            for adapter in sub.active_adapters:
                if adapter in sub.lora_A:
                    key = f"{name}.weight"
                    state[key] = state[key] + sub.get_delta_weight(adapter).to(state[key].dtype)
    return state
