"""Typed configuration of a preference model; stored verbatim in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genpref.errors import ConfigError

ModelType = Literal["bt", "gpm", "pairpm"]


@dataclass
class PreferenceModelConfig:
    """A preference model = backbone + pooling rule + head + link function."""

    type: ModelType = "gpm"
    """bt (scalar reward), gpm (general preference embedding) or pairpm (pairwise classifier)."""
    backbone: str = "minilm"
    """Built-in name (minilm, smollm2-135m), local folder or hub id of a transformers model."""
    architecture: Literal["auto", "encoder", "decoder"] = "auto"
    """Backbone kind; auto reads it from the model config."""
    pooling: Literal["auto", "last", "cls", "mean", "response_mean"] = "auto"
    """Sequence pooling: auto = last real token for decoders, mean for encoders; response_mean averages the
    response tokens only (encoders)."""
    k: int = 1
    """GPM: number of 2x2 skew-symmetric blocks (embedding dimension 2k). Not selfplay's k (samples per
    prompt): the two never meet in one config."""
    prompt_gate: bool = False
    """GPM: scale block l by λ_l(x) = softmax(W_p h_x) from the prompt's last-token state."""
    l2_normalize: bool = True
    """GPM: L2-normalise embeddings (as in the paper's released models)."""
    tau: float | None = None
    """Temperature in P = σ(s/τ); default 0.1 for gpm (paper code), 1.0 for bt and pairpm."""
    sign: Literal[1, -1] = 1
    """GPM sign convention: s = sign·⟨R v_a, v_b⟩ with blocks [[0,-1],[1,0]] (paper: +1)."""
    max_length: int = 512
    """Maximum tokens per sequence (prompt + response; for pairpm prompt + both responses)."""
    truncation: Literal["truncate", "drop"] = "truncate"
    """Over-long rows: truncate (prompt from the left, then the response) or drop (reported)."""
    head_bias: bool = False
    """Bias term in the output head (the paper's heads have none)."""
    trust_remote_code: bool = False
    """Allow custom modelling code from the backbone's repository (off by default)."""

    def __post_init__(self) -> None:
        if self.type not in ("bt", "gpm", "pairpm"):
            raise ConfigError(f"model.type must be bt, gpm or pairpm, got '{self.type}'")
        if self.k < 1:
            raise ConfigError(f"model.k must be >= 1, got {self.k}")
        if self.prompt_gate and self.type != "gpm":
            raise ConfigError("model.prompt_gate is only defined for model.type=gpm")
        if self.prompt_gate and self.k == 1:
            raise ConfigError(
                "model.prompt_gate with model.k=1 does nothing: the gate is a softmax over the k blocks, "
                "so with one block it is always 1.\n  fix: set model.k >= 2, or model.prompt_gate=false"
            )
        if self.tau is not None and self.tau <= 0:
            raise ConfigError(f"model.tau must be > 0, got {self.tau}")
        if self.max_length < 8:
            raise ConfigError(f"model.max_length must be >= 8, got {self.max_length}")

    @property
    def temperature(self) -> float:
        """τ, with the per-type default resolved (0.1 for gpm as in the paper's code, else 1.0)."""
        if self.tau is not None:
            return self.tau
        return 0.1 if self.type == "gpm" else 1.0

    @property
    def embedding_dim(self) -> int:
        """Head output size: 2k for GPM, 1 for BT and PairPM."""
        return 2 * self.k if self.type == "gpm" else 1
