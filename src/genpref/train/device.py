"""Where models run and in which precision: device placement checks and the CPU bf16 fallback.

Models that ``accelerator.prepare`` never sees (a frozen live reference, the self-play judge and
generator, evaluation models) are placed with ``place`` and checked with ``check_on_device`` so that a
CUDA run never mixes a CPU copy into a step ("Expected all tensors to be on the same device").

bf16 on a CPU is fast only with native bf16 matrix instructions (AVX512-BF16 / AMX, or oneDNN's
AVX-512 path). On an AVX2-only CPU a bf16 matmul runs about 100x slower than fp32 (1.2 against 134
GFLOP/s measured on an AMD EPYC), so a bf16 run there looks hung: ``resolve_precision`` warns and
falls back to fp32 unless the user insists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

log = logging.getLogger("genpref")


def default_device() -> torch.device:
    """The device a stand-alone model (judge, evaluation) runs on: the first GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_capability() -> str:
    """PyTorch's dispatch level for this CPU: "AVX2", "AVX512", "DEFAULT", ... (as in ``torch.__config__``)."""
    return torch.backends.cpu.get_cpu_capability()


def cpu_has_fast_bf16() -> bool:
    """True when bf16 matrix products on this CPU use native instructions (oneDNN's bf16 path).

    oneDNN reports bf16 support for AVX-512 (with or without the BF16 extension) and AMX; an AVX2-only
    CPU falls back to a scalar emulation about 100x slower than fp32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: judge by the dispatch level
        return cpu_capability().startswith(("AVX512", "SVE"))


def resolve_precision(precision: str, device: torch.device | str, allow_slow_bf16: bool) -> str:
    """The precision to run: ``precision`` unless it is bf16 on a CPU without fast bf16 (then fp32).

    Args:
        precision: "fp32" or "bf16" as configured.
        device: where the model runs.
        allow_slow_bf16: keep bf16 anyway (with a warning): the user insists.
    """
    if precision != "bf16" or torch.device(device).type != "cpu" or cpu_has_fast_bf16():
        return precision
    what = f"this CPU ({cpu_capability()}) has no native bf16 matrix instructions: bf16 runs ~100x slower than fp32"
    if allow_slow_bf16:
        log.warning(f"{what}; keeping bf16 because allow_slow_bf16 is set")
        return precision
    log.warning(f"{what}; falling back to fp32 (set train.allow_slow_bf16=true to insist)")
    return "fp32"


def place(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Move ``model`` to ``device`` (in place, as ``nn.Module.to``) and return it."""
    return model.to(torch.device(device))


def _same(a: torch.device, b: torch.device) -> bool:
    """Equal devices, reading a bare "cuda" as the current CUDA device."""
    if a.type != b.type:
        return False
    if a.type == "cuda":
        current = torch.cuda.current_device() if torch.cuda.is_available() else 0
        return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
    return a.index == b.index or a.index is None or b.index is None


def check_on_device(models: Iterable[tuple[str, torch.nn.Module]], device: torch.device | str) -> None:
    """Raise RuntimeError (a genpref bug, so with a traceback) naming the first model with a parameter or buffer off ``device``."""
    device = torch.device(device)
    for name, model in models:
        for pname, tensor in (*model.named_parameters(), *model.named_buffers()):
            if not _same(tensor.device, device):
                raise RuntimeError(
                    f"{name} has '{pname}' on {tensor.device}, but this step runs on {device}.\n"
                    "  fix: this is a genpref bug (a model created outside accelerator.prepare was not "
                    "placed); please report it with the command you ran"
                )


def check_trainable_attention(model: torch.nn.Module, device: torch.device | str) -> None:
    """Raise ConfigError when the model's attention cannot train on ``device``: PyTorch's flex attention
    has no backward pass on CPU (it runs forward there, so reference passes and generation work)."""
    from genpref.errors import ConfigError
    from genpref.policy.sequences import attention_implementation

    if attention_implementation(model) == "flex_attention" and torch.device(device).type == "cpu":
        raise ConfigError(
            "policy.attention=flex_attention cannot train on the CPU: PyTorch's flex attention has no "
            "backward pass there.\n  fix: policy.attention=auto (sdpa) on a CPU; flex_attention on a GPU"
        )
