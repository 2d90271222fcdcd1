"""Pure preference-score math for the Bradley-Terry (BT) and General Preference (GPM) models.

Notation follows Zhang et al., "Beyond Bradley-Terry Models: A General Preference Model for
Language Model Alignment" (arXiv 2410.02197):

* A response y to prompt x is embedded as v_y ∈ R^{2k} (k "blocks").
* The skew-symmetric operator R^≻ is block diagonal with k blocks λ_l(x)·[[0, −1], [1, 0]]
  (λ_l ≡ 1 without the prompt gate; with it, λ(x) = softmax(W_p h_x) over the k blocks, §4.2).
* The preference score is s(y_a ≻ y_b | x) = ⟨R^≻ v_a, v_b⟩ (paper Eq. 4.1/4.2) and
  P(y_a ≻ y_b | x) = σ(s / τ).

For one block, ⟨R v_a, v_b⟩ = a_0·b_1 − a_1·b_0, the 2-D cross product. Skew-symmetry of R gives
s(a, b) = −s(b, a) and s(a, a) = 0 for any embedding, which is what lets GPM express cycles.
The BT model is the special case k = 1 with v_y = (r_y, 1) (no L2 normalisation): then
s(a, b) = r_a − r_b.

Nothing here reduces, moves devices or reads config: callers do.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bt_score(reward_a: Tensor, reward_b: Tensor) -> Tensor:
    """Bradley-Terry score s(a ≻ b) = r_a − r_b.

    Args:
        reward_a, reward_b: (...) scalar rewards.
    Returns:
        (...) scores; P(a ≻ b) = σ(s / τ).
    """
    return reward_a - reward_b


def _blocks(embedding: Tensor) -> tuple[Tensor, Tensor]:
    """Split (..., 2k) into the even and odd coordinates, each (..., k)."""
    if embedding.shape[-1] % 2:
        raise ValueError(f"GPM embeddings need an even last dimension, got {embedding.shape[-1]}")
    return embedding[..., 0::2], embedding[..., 1::2]


def gpm_rotate(embedding: Tensor, eigenvalues: Tensor | None = None) -> Tensor:
    """Apply R^≻ to an embedding without materialising the (2k, 2k) matrix.

    Block l maps (v_{2l}, v_{2l+1}) to λ_l·(−v_{2l+1}, v_{2l}).

    Args:
        embedding: (..., 2k).
        eigenvalues: (..., k) block scales λ(x), broadcastable to the embedding's batch
            shape; None means λ ≡ 1.
    Returns:
        (..., 2k) R^≻ v.
    """
    even, odd = _blocks(embedding)
    if eigenvalues is not None:
        even, odd = even * eigenvalues, odd * eigenvalues
    return torch.stack((-odd, even), dim=-1).flatten(-2)


def gpm_score(embedding_a: Tensor, embedding_b: Tensor, eigenvalues: Tensor | None = None) -> Tensor:
    """GPM preference score s(a ≻ b | x) = ⟨R^≻(x) v_a, v_b⟩ (arXiv 2410.02197, Eq. 4.2).

    Equals Σ_l λ_l (a_{2l} b_{2l+1} − a_{2l+1} b_{2l}).

    Args:
        embedding_a, embedding_b: (..., 2k).
        eigenvalues: (..., k) or None.
    Returns:
        (...) scores, exactly antisymmetric in (a, b).
    """
    a_even, a_odd = _blocks(embedding_a)
    b_even, b_odd = _blocks(embedding_b)
    cross = a_even * b_odd - a_odd * b_even  # (..., k)
    if eigenvalues is not None:
        cross = cross * eigenvalues
    return cross.sum(-1)


def gpm_score_matrix(embeddings: Tensor, eigenvalues: Tensor | None = None) -> Tensor:
    """All-pairs scores S_ij = s(y_i ≻ y_j | x) for K responses to one prompt.

    Args:
        embeddings: (K, 2k) or batched (B, K, 2k).
        eigenvalues: (k,) or (B, k), or None.
    Returns:
        (K, K) or (B, K, K) skew-symmetric matrix.
    """
    if eigenvalues is not None and embeddings.dim() == 3:
        eigenvalues = eigenvalues.unsqueeze(-2)  # (B, 1, k) broadcasts over the K responses
    rotated = gpm_rotate(embeddings, eigenvalues)  # (..., K, 2k)
    return rotated @ embeddings.transpose(-1, -2)


def gpm_score_vs_mixture(embeddings: Tensor, eigenvalues: Tensor | None = None) -> Tensor:
    """Score of each response against the uniform mixture of the K: s(y_i ≻ π | x).

    By bilinearity, s(y_i ≻ π) = mean_j s(y_i ≻ y_j) = ⟨R^≻ v_i, mean_j v_j⟩, so ranking K
    responses costs K embeddings and one mean, not K² comparisons (the GPO target, §5).
    The mean includes j = i, whose term is 0.

    Args:
        embeddings: (K, 2k).
        eigenvalues: (k,) or None.
    Returns:
        (K,) scores.
    """
    mean = embeddings.mean(0, keepdim=True).expand_as(embeddings)
    return gpm_score(embeddings, mean, eigenvalues)


def group_mean(x: Tensor, groups: Tensor) -> Tensor:
    """Replace each row by the mean of its group.

    Args:
        x: (N, D).
        groups: (N,) long group ids in [0, G).
    Returns:
        (N, D).
    """
    n_groups = int(groups.max()) + 1
    sums = torch.zeros(n_groups, x.shape[-1], dtype=x.dtype, device=x.device).index_add_(0, groups, x)
    counts = torch.bincount(groups, minlength=n_groups).clamp_min(1).to(x.dtype)
    return (sums / counts[:, None])[groups]


def gpm_score_vs_group_mixture(
    embeddings: Tensor, groups: Tensor, eigenvalues: Tensor | None = None
) -> Tensor:
    """s(y_i ≻ π_g | x_g) for N responses in G groups, each scored against its own group's uniform mixture.

    The batched form of :func:`gpm_score_vs_mixture` (the group-relative reward GRPO/RLOO-style trainers
    want): row i is compared with the mean embedding of the rows sharing its group id.

    Args:
        embeddings: (N, 2k).
        groups: (N,) long group ids in [0, G).
        eigenvalues: (N, k) per-row gate (equal within a group), or None.
    Returns:
        (N,) scores; a group of one scores 0.
    """
    return gpm_score(embeddings, group_mean(embeddings, groups), eigenvalues)


def prompt_gate(gate_logits: Tensor) -> Tensor:
    """Prompt-dependent eigenvalue scales λ(x) = softmax(W_p h_x) over the k blocks (§4.2).

    Args:
        gate_logits: (..., k) = W_p h_x.
    Returns:
        (..., k) non-negative scales summing to 1.
    """
    return torch.softmax(gate_logits, dim=-1)


def bt_embedding(reward: Tensor) -> Tensor:
    """Embed BT rewards as GPM vectors v = (r, 1), so that gpm_score gives r_a − r_b.

    Args:
        reward: (...).
    Returns:
        (..., 2).
    """
    return torch.stack((reward, torch.ones_like(reward)), dim=-1)


def preference_prob(score: Tensor, tau: float) -> Tensor:
    """Link function P(a ≻ b) = σ(s / τ) (paper Eq. 3.1 for BT, Eq. 4.2 for GPM)."""
    return torch.sigmoid(score / tau)
