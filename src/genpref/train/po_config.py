"""Configs of ``genpref po train`` and ``genpref sft`` (no heavy imports: ``--help`` is instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genpref.errors import ConfigError
from genpref.train.config import DataConfig, OptimConfig, TrainConfig
from genpref.validate import at_least, between, positive, renamed

AttentionName = Literal["auto", "sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3"]
"""transformers ``attn_implementation`` values genpref accepts (auto: transformers' default)."""

PolicyLossName = Literal[
    "dpo", "ipo", "ipo_sum", "cdpo", "robust", "hinge", "kto", "simpo", "orpo", "sppo", "sppo_hard"
]


@dataclass
class PolicyConfig:
    """The policy (a causal LM) and its tokenisation."""

    model: str = "smollm2-135m"
    """Built-in name (smollm2-135m), local folder or hub id of a causal LM."""
    max_length: int = 512
    """Maximum tokens of prompt + completion (at most the model's position limit, checked at start)."""
    truncation: Literal["truncate", "drop"] = "truncate"
    """Over-long rows: truncate (prompt from the left, then the completion) or drop (both reported)."""
    trust_remote_code: bool = False
    """Allow custom modelling code from the model's repository."""
    attention: AttentionName = "auto"
    """transformers' attention implementation: auto (transformers' default, sdpa), sdpa, eager,
    flex_attention (PyTorch's block-sparse attention, no extra package; with packing it skips every block
    across sequences, so a packed row costs linear, not quadratic, attention), flash_attention_2/3 (needs
    the flash-attn package). engine.packing=auto packs with flex and flash attention."""


@dataclass
class LossConfig:
    """Which loss and its coefficients."""

    name: PolicyLossName = "dpo"
    """dpo (sigmoid), ipo (per-token averaged, as TRL), ipo_sum (paper's summed log-probs), cdpo (label smoothing),
    robust (rDPO), hinge (SLiC), kto (unpaired), simpo, orpo, sppo (soft win probabilities from the data's prob), sppo_hard."""
    beta: float = 0.1
    """β (ORPO: λ; SPPO: 1/η)."""
    label_smoothing: float = 0.0
    """ε for cdpo and robust."""
    gamma: float = 0.5
    """SimPO target margin γ."""
    sft_weight: float = 0.0
    """Weight of an added NLL term on chosen (per-token average); orpo defaults to 1."""
    desirable_weight: float = 1.0
    """KTO λ_D."""
    undesirable_weight: float = 1.0
    """KTO λ_U."""
    loss: PolicyLossName | None = None
    """Deprecated name of loss.name (accepted with a warning until genpref 0.3)."""

    def __post_init__(self) -> None:
        from genpref.losses.policy import PolicyLoss  # torch: imported only when a config is built

        self.name, self.loss = renamed("loss.loss", "loss.name", self.loss, self.name, default="dpo"), None
        positive("loss.beta", self.beta)
        at_least("loss.sft_weight", self.sft_weight, 0)
        positive("loss.desirable_weight", self.desirable_weight)
        positive("loss.undesirable_weight", self.undesirable_weight)
        if self.label_smoothing and not PolicyLoss(self.name).uses_label_smoothing:
            raise ConfigError(
                f"loss.label_smoothing={self.label_smoothing} has no effect with loss.name={self.name}.\n"
                "  fix: use loss.name=cdpo or robust for label smoothing, or set loss.label_smoothing=0"
            )
        between("loss.label_smoothing", self.label_smoothing, 0.0, 0.5, open_high=True)


@dataclass
class EngineConfig:
    """How log-probs are computed."""

    packing: bool | Literal["auto"] = "auto"
    """Padding-free packing (sequences concatenated, positions restart per sequence). auto: on with
    varlen attention (policy.attention flex_attention or flash_attention_2/3: cost linear in tokens),
    off otherwise — with sdpa/eager attention a packed row costs attention quadratic in the whole row,
    more than the padding it saves."""
    compile: bool = False
    """torch.compile the policy's decoder (dynamic shapes). Pays a compile at the first batches of each
    new shape; meant for long GPU runs. Values are those of the eager model (tested on CPU)."""
    logprob_chunk: int = 1024
    """Tokens per LM-head chunk (memory O(chunk x vocab))."""
    reference: Literal["precompute", "live"] = "precompute"
    """precompute: reference log-probs once, cached on disk; live: a frozen reference forward every step."""
    reference_dtype: Literal["fp32", "bf16"] = "fp32"
    """Dtype of the precomputed reference pass."""
    reference_batch_size: int = 16
    """Sequences per reference batch."""
    cache_dir: str | None = None
    """Reference log-prob cache (default ~/.cache/genpref/reference_logps)."""
    share_prompt: bool = True
    """Self-play training: the samples of one prompt in a batch run the prompt once and share its
    key/value cache (exact, tested equal; up to K× less prompt compute). Batches then keep a prompt's
    samples together (train.group_by_prompt is implied; train.group_by_length is ignored)."""

    def __post_init__(self) -> None:
        at_least("engine.logprob_chunk", self.logprob_chunk, 1)
        at_least("engine.reference_batch_size", self.reference_batch_size, 1)


@dataclass
class POTrainConfig:
    """genpref po train: offline preference optimisation (DPO family) of a causal LM."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The policy."""
    data: DataConfig = field(default_factory=DataConfig)
    """Data."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Log-prob engine."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-7, warmup_ratio=0.1))
    """Optimizer and schedule."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=4))
    """Training loop."""
    eval_batch_size: int = 8
    """Pairs per evaluation batch."""
    output_dir: str = "runs/po"
    """Run folder: checkpoints/, final/ (a transformers folder), metrics.jsonl, config.yaml."""
    resume: bool = False
    """Continue from the newest complete checkpoint in output_dir."""
    overwrite: bool = False
    """Delete a finished or interrupted run in output_dir and start again (not with resume)."""

    def __post_init__(self) -> None:
        at_least("eval_batch_size", self.eval_batch_size, 1)
        at_least("policy.max_length", self.policy.max_length, 8)


@dataclass
class SFTConfig:
    """genpref sft: supervised fine-tuning on completions (loss on completion tokens only)."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The policy."""
    data: DataConfig = field(default_factory=DataConfig)
    """prompt/completion rows, messages rows, or preference pairs (trained on chosen)."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Log-prob engine (reference settings unused)."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-5, warmup_ratio=0.05))
    """Optimizer and schedule."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=8))
    """Training loop."""
    output_dir: str = "runs/sft"
    """Run folder."""
    resume: bool = False
    """Continue from the newest complete checkpoint in output_dir."""
    overwrite: bool = False
    """Delete a finished or interrupted run in output_dir and start again (not with resume)."""

    def __post_init__(self) -> None:
        at_least("policy.max_length", self.policy.max_length, 8)
