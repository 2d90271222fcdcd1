"""A Gauss-Newton solver for one self-play iteration's regression (``SelfPlayConfig.solver: gauss_newton``).

SPPO and GPO fit, each iteration, L(θ) = Σ_i w_i (ρ_i(θ) − η·g_i)² with ρ_i = log π_θ(y_i|x_i) − log π_t(y_i|x_i)
(2405.00675 Eq. 3.6; 2410.02197 §5). From θ_t (ρ = 0) one gradient step of size lr moves row j's
log-ratio by ρ_j ≈ 2·lr·η Σ_i w_i g_i K_ji, where K = J Jᵀ is the (N, N) Gram matrix of the rows'
log-probability gradients J_i = ∇_θ ρ_i (the empirical neural tangent kernel). Two answers whose
gradients overlap (" cat" and " dog" after the same prompt) move together, so an answer can fall although
its own target asks it to rise, and a rarely sampled answer moves by its count, not by its target.

The Gauss-Newton step minimises the loss linearised at θ plus a damping term, in sample space:

    Δθ = Jᵀ α,   (W K + λ I) α = W r,   r_i = η g_i − ρ_i(θ),   λ = damping · tr(W K) / N

so the linearised log-ratios move by K α → r as λ → 0: every sampled answer moves by its own target,
whatever its count or its overlap with the others (the Levenberg-Marquardt damping keeps Δθ small where
K is ill-conditioned, e.g. "cat." and "cat!" after one prompt). This is the regression's minimiser that
the multiplicative-weights reading of SPPO/GPO assumes.

θ here is the weight (and bias) of every trainable ``nn.Linear`` of the policy except its output
embedding: for a linear layer with inputs a_it and output gradients b_it at the positions t of row i,
J_i = Σ_t b_it a_itᵀ, so K_ij = Σ_{t,s} (a_it·a_js)(b_it·b_js) and Δθ = Σ_i α_i Σ_t b_it a_itᵀ come
from one batched forward and backward pass, without any per-row gradient (the "ghost" Gram of
per-example gradient methods). Embeddings and norms keep their values during such a step.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from genpref.selfplay.line_search import log_ratios


def gauss_newton_coefficients(gram: Tensor, weights: Tensor, residual: Tensor, damping: float) -> Tensor:
    """α with (W K + λ I) α = W r, λ = damping · tr(W K) / N: the sample-space Gauss-Newton step Δθ = Jᵀ α.

    Args:
        gram: (N, N) K_ij = ⟨∇ρ_i, ∇ρ_j⟩.
        weights: (N,) loss weights w_i ≥ 0.
        residual: (N,) r_i = η g_i − ρ_i, the change of each log-ratio the loss asks for (η g_i at θ_t).
        damping: λ relative to the mean weighted diagonal of K (0: exact interpolation where K is invertible).
    Returns:
        (N,) α in float64; the step changes the log-ratios by K α to first order.

    Example: K = [[2, 0], [0, 1]], w = 1, r = (1, 1), damping 0 → α = (½, 1), K α = r.
    """
    k, w, r = gram.double(), weights.double(), residual.double()
    n = k.shape[0]
    wk = w[:, None] * k
    lam = damping * torch.trace(wk) / max(n, 1)
    eye = torch.eye(n, dtype=k.dtype, device=k.device)
    return torch.linalg.lstsq(wk + lam * eye, (w * r)[:, None]).solution[:, 0]


def ghost_gram(a: Tensor, b: Tensor, block: int = 2**24) -> Tensor:
    """(N, N) Gram matrix of a linear layer's per-row weight gradients, Σ_{t,s} (a_it·a_js)(b_it·b_js).

    Args:
        a: (N, L, d_in) the layer's inputs per row and position.
        b: (N, L, d_out) the gradients of its outputs (zero where a position does not count).
        block: most entries of one (rows·L, N·L) product held at once.
    Returns:
        (N, N) float64.
    """
    n, length = a.shape[:2]
    fa, fb = a.reshape(n * length, -1).double(), b.reshape(n * length, -1).double()
    out = torch.zeros(n, n, dtype=torch.float64, device=a.device)
    rows = max(1, block // (length * n * length))
    for i in range(0, n, rows):
        sl = slice(i * length, min(n, i + rows) * length)
        prod = (fa[sl] @ fa.T) * (fb[sl] @ fb.T)  # (r·L, N·L)
        out[i : i + rows] = prod.view(-1, length, n, length).sum((1, 3))
    return out


def gauss_newton_layers(lm: nn.Module) -> list[nn.Linear]:
    """The trainable linear layers a Gauss-Newton step updates: every ``nn.Linear`` but the output embedding."""
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    return [m for m in lm.modules() if isinstance(m, nn.Linear) and m.weight.requires_grad and m is not head]


@contextmanager
def _capture(layers: list[nn.Linear], others: list[nn.Parameter]):
    """Record each layer's input and output gradient; no gradient for ``others`` meanwhile."""
    inputs: dict = {}
    grads: dict = {}

    def forward_hook(module, args, output):
        inputs[module] = args[0].detach()
        output.register_hook(lambda g: grads.__setitem__(module, g.detach()))

    handles = [m.register_forward_hook(forward_hook) for m in layers]
    flags = [p.requires_grad for p in others]
    for p in others:
        p.requires_grad_(False)
    try:
        yield inputs, grads
    finally:
        for h in handles:
            h.remove()
        for p, flag in zip(others, flags):
            p.requires_grad_(flag)


def gauss_newton_step(
    model, lm: nn.Module, batch: dict, rows: list, eta: float, damping: float, length_normalized: bool
) -> dict:
    """Apply one sample-space Gauss-Newton step to ``lm``'s linear layers (in place).

    Args:
        model: ``batch`` → ((N,) summed log-probs, (N,) token counts); wraps ``lm``.
        lm: the causal LM whose :func:`gauss_newton_layers` are updated.
        batch: the N rows padded into one batch (one row per example: no packing, no shared prompts).
        rows: N SelfPlayItem-like rows (``weight``, ``target``, ``ref_logp``), distinct (merged) samples.
        eta: η; damping: see :func:`gauss_newton_coefficients`.
        length_normalized: ρ divided by the response's token count (LN variants).
    Returns:
        diagnostics: mean |r|, mean |K α| (the first-order change), the first-order misfit, max |α|.
    """
    layers = gauss_newton_layers(lm)
    if not layers:
        raise ValueError("solver gauss_newton needs trainable nn.Linear layers besides the output embedding")
    chosen = {id(p) for m in layers for p in m.parameters(recurse=False)}
    others = [p for p in lm.parameters() if id(p) not in chosen and p.requires_grad]
    with _capture(layers, others) as (inputs, grads):
        logp, count = model(**batch)
        scale = 1.0 / count.clamp_min(1).to(logp.dtype) if length_normalized else torch.ones_like(logp)
        ref = torch.tensor([r.ref_logp for r in rows], dtype=torch.float64, device=logp.device)
        ratio = log_ratios(logp.detach(), count, ref, length_normalized)  # (N,) float64
        (logp * scale).sum().backward()  # rows are independent: each row's output gradients are its own
    lm.zero_grad(set_to_none=True)
    layers = [m for m in layers if m in grads]  # a layer the batch did not reach has no gradient
    gram = _layers_gram(layers, inputs, grads)
    weights = torch.tensor([r.weight for r in rows], dtype=torch.float64, device=gram.device)
    targets = torch.tensor([r.target for r in rows], dtype=torch.float64, device=gram.device)
    residual = eta * targets - ratio
    alpha = gauss_newton_coefficients(gram, weights, residual, damping)
    with torch.no_grad():
        for m in layers:  # ΔW = Σ_i α_i Σ_t b_it a_itᵀ
            b = grads[m] * alpha.to(grads[m].dtype)[:, None, None]
            m.weight.add_(torch.einsum("nlo,nli->oi", b, inputs[m]).to(m.weight.dtype))
            if m.bias is not None:
                m.bias.add_(b.sum((0, 1)).to(m.bias.dtype))
    predicted = gram @ alpha
    return {
        "rows": len(rows),
        "residual_abs_mean": float(residual.abs().mean()),
        "predicted_abs_mean": float(predicted.abs().mean()),
        "fit_residual": float((predicted - residual).abs().mean()),
        "alpha_abs_max": float(alpha.abs().max()),
    }


def _layers_gram(layers: list[nn.Linear], inputs: dict, grads: dict) -> Tensor:
    """(N, N) Σ over ``layers`` of their ghost Gram matrices (weights and biases).

    Layers that read the same input (q, k, v; gate, up) share one (a aᵀ) product: Σ_m (a aᵀ) ⊙ (b_m b_mᵀ) =
    (a aᵀ) ⊙ (B Bᵀ) with B their output gradients side by side.
    """
    groups: dict = {}
    for m in layers:
        a = inputs[m]
        groups.setdefault((a.data_ptr(), tuple(a.shape)), (a, []))[1].append(grads[m])
    gram = sum(ghost_gram(a, torch.cat(bs, dim=-1)) for a, bs in groups.values())
    return gram + sum(_bias_gram(grads[m]) for m in layers if m.bias is not None)


def _bias_gram(b: Tensor) -> Tensor:
    """(N, N) Gram matrix of per-row bias gradients Σ_t b_it."""
    s = b.sum(1).double()
    return s @ s.T
