"""Typed configs shared by the training recipes. Field docstrings become ``--help``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.data.config import DataConfig  # noqa: F401 - re-exported (moved to genpref.data.config)
from genpref.errors import ConfigError
from genpref.models.lora import LoraSettings
from genpref.validate import at_least, between, positive


@dataclass
class OptimConfig:
    """Optimizer (AdamW or RMSprop) with warm-up and decay."""

    name: Literal["adamw", "rmsprop", "sgd"] = "adamw"
    """Optimizer: adamw, rmsprop (the SPPO/GPO papers' choice), or sgd (plain gradient steps: the step
    scales with the loss, so a self-play η keeps its meaning in a few steps, where Adam and RMSprop
    normalise it away; pair it with max_grad_norm: 0, since clipping normalises too)."""
    lr: float = 2e-5
    """Peak learning rate."""
    head_lr: float | None = None
    """Learning rate of the new head(s); default: same as lr."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    warmup_ratio: float = 0.05
    """Fraction of optimizer steps spent warming up linearly from 0."""
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warm-up."""
    max_grad_norm: float = 1.0
    """Gradient clipping threshold (0 disables clipping)."""

    def __post_init__(self) -> None:
        positive("optim.lr", self.lr)
        positive("optim.head_lr", self.head_lr, optional=True)
        at_least("optim.weight_decay", self.weight_decay, 0)
        between("optim.warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        at_least("optim.max_grad_norm", self.max_grad_norm, 0)
        for i, beta in enumerate(self.betas):
            between(f"optim.betas[{i}]", beta, 0.0, 1.0, open_high=True)


@dataclass
class TrainConfig:
    """Loop settings."""

    epochs: int = 1
    """Passes over the training data."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs when smaller)."""
    batch_size: int = 8
    """Comparisons per process per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (the update equals that of the large batch)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """fp32, or bf16 autocast (parameters stay fp32). On a CPU without native bf16 instructions (AVX2
    only) bf16 is ~100x slower than fp32: the run then warns and uses fp32 unless allow_slow_bf16."""
    allow_slow_bf16: bool = False
    """Keep precision=bf16 (and engine.reference_dtype=bf16) on a CPU without native bf16 instead of
    falling back to fp32."""
    finetune: Literal["full", "lora", "frozen"] = "full"
    """full fine-tuning, LoRA adapters (peft), or a frozen backbone with trainable head."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """LoRA settings (used when finetune=lora)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    group_by_prompt: bool = False
    """Preference-model training: shuffle prompts rather than rows, so the comparisons of one prompt are
    consecutive and a batch holds whole prompts where the batch size allows. On cyclic data
    (A ≻ B ≻ C ≻ A per prompt) a batch of whole cycles has no net scalar (BT-like) gradient, which
    otherwise drowns the cyclic signal; choose batch_size as a multiple of the comparisons per prompt."""
    group_by_length: bool = False
    """Batch rows of similar token length together (as transformers' ``group_by_length``): less padding,
    so less compute when lengths vary (self-play prompts range from 8 to 1000+ tokens). Supported by
    genpref po and genpref selfplay; not together with group_by_prompt."""
    disable_dropout: bool = True
    """Set every dropout probability of the model to 0 for training (as TRL's trainers do by default):
    the training forward then equals the inference forward, and small preference signals are not
    drowned in dropout noise."""
    seed: int = 0
    """Seed for head initialisation, data order and dropout."""
    log_every: int = 10
    """Optimizer steps between metric lines."""
    eval_every: int = 0
    """Optimizer steps between evaluations (0: only at the end)."""
    save_every: int = 0
    """Optimizer steps between checkpoints (0: only at the end)."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (the newest)."""
    report_to: list[str] = field(default_factory=list)
    """Extra trackers: tensorboard, wandb (metrics.jsonl is always written)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "log_every"):
            at_least(f"train.{name}", getattr(self, name), 1)
        at_least("train.max_steps", self.max_steps, 1, optional=True)
        at_least("train.eval_every", self.eval_every, 0)
        at_least("train.save_every", self.save_every, 0)
        at_least("train.keep_checkpoints", self.keep_checkpoints, 0)
        if self.disable_dropout and self.finetune == "lora" and self.lora.dropout > 0:
            raise ConfigError(
                f"train.lora.dropout={self.lora.dropout} would be zeroed by train.disable_dropout=true.\n"
                "  fix: set train.disable_dropout=false to keep dropout (the model's own included), "
                "or train.lora.dropout=0"
            )
