"""Completion log-probabilities of a causal LM, without materialising full-vocabulary logits.

log π(y | x) = Σ_t log softmax(W h_t)[y_t] over the completion tokens only. Two savings over the
usual "logits for every position, then log_softmax" route:

1. Only completion positions go through the LM head (prompt and padding tokens never do).
2. ``ChunkedTokenLogProb`` computes the log-softmax in chunks of tokens and recomputes each chunk's
   logits in the backward pass, so memory is O(chunk · V) instead of O(tokens · V).

Batches are either padded ``(B, T)`` or packed: all sequences concatenated into one row with
``position_ids`` restarting at 0 per sequence and no attention mask, from which transformers builds
a block-diagonal causal mask (padding-free; tested equal to the padded result).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genpref.models.lora import unwrapped


def _compute_dtype(hidden: Tensor, weight: Tensor) -> torch.dtype:
    """The matmul dtype: autocast's (e.g. bf16) when it is on for this device, else the weight's."""
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


class ChunkedTokenLogProb(torch.autograd.Function):
    """log softmax(h Wᵀ + b)[target] for N token states, chunk by chunk.

    Forward keeps only the per-token log-sum-exp; backward recomputes each chunk's logits and uses
    d logp / d logits = onehot(target) − softmax(logits).

    Precision: all three GEMMs (forward, recomputed logits, the two gradients) run in the compute dtype
    chosen at forward time (autocast's dtype, so bf16 under bf16 autocast, also in the backward pass,
    which runs outside autocast), with fp32 accumulation inside each GEMM; the log-sum-exp, softmax and
    the weight gradient summed over chunks are fp32. Without autocast on fp32 weights every step is
    fp32, as before.
    """

    @staticmethod
    def forward(
        ctx, hidden: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor, chunk: int
    ) -> Tensor:
        dtype = _compute_dtype(hidden, weight)
        w, b = weight.to(dtype), None if bias is None else bias.to(dtype)
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        lse = torch.empty_like(out)
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], chunk):
                h = hidden[start : start + chunk].to(dtype)
                logits = torch.nn.functional.linear(h, w, b).float()  # (n, V)
                lse[start : start + chunk] = torch.logsumexp(logits, dim=-1)
                picked = logits.gather(-1, target[start : start + chunk, None]).squeeze(-1)
                out[start : start + chunk] = picked - lse[start : start + chunk]
        ctx.save_for_backward(hidden, weight, bias, target, lse)
        ctx.chunk, ctx.dtype = chunk, dtype
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        hidden, weight, bias, target, lse = ctx.saved_tensors
        dtype = ctx.dtype
        w, b = weight.to(dtype), None if bias is None else bias.to(dtype)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        grad_bias = (
            torch.zeros_like(bias, dtype=torch.float32)
            if bias is not None and ctx.needs_input_grad[2]
            else None
        )
        for start in range(0, hidden.shape[0], ctx.chunk):
            sl = slice(start, start + ctx.chunk)
            h = hidden[sl].to(dtype)
            logits = torch.nn.functional.linear(h, w, b).float()
            grad_logits = torch.exp(logits - lse[sl, None]).neg_()  # −softmax
            grad_logits.scatter_add_(-1, target[sl, None], torch.ones_like(lse[sl, None]))
            grad_logits.mul_(grad_out[sl, None])  # (n, V) fp32
            if grad_bias is not None:
                grad_bias += grad_logits.sum(0)
            grad_logits = grad_logits.to(dtype)  # no-op in fp32
            if grad_hidden is not None:
                grad_hidden[sl] = (grad_logits @ w).to(hidden.dtype)
            if grad_weight is not None:
                if dtype == torch.float32:
                    grad_weight.addmm_(grad_logits.T, h)
                else:  # a bf16 GEMM (fp32 accumulation inside), summed over chunks in fp32
                    grad_weight += grad_logits.T @ h
        grad_weight = None if grad_weight is None else grad_weight.to(weight.dtype)
        grad_bias = None if grad_bias is None else grad_bias.to(bias.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None


def token_logps(hidden: Tensor, lm_head: torch.nn.Module, target: Tensor, chunk: int = 1024) -> Tensor:
    """Per-token log-probabilities log softmax(lm_head(h))[target].

    Args:
        hidden: (N, H) states that predict the targets.
        lm_head: the output projection (``nn.Linear``, possibly tied to the embeddings).
        target: (N,) token ids.
        chunk: tokens per chunk (memory O(chunk · V)).
    Returns:
        (N,) float32 log-probabilities.
    """
    return ChunkedTokenLogProb.apply(hidden, lm_head.weight, lm_head.bias, target, chunk)


def is_right_padded(attention_mask: Tensor) -> bool:
    """(R, T) mask of 0/1: every row is ones then zeros (padding only at the end), starting with a one."""
    mask = attention_mask.bool()
    return bool(mask[:, 0].all() and (mask[:, 1:] <= mask[:, :-1]).all())


def base_and_decoder(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(the transformers causal LM inside a peft wrapper or the model itself, its decoder stack)."""
    base = unwrapped(model)
    return base, (base.get_decoder() if hasattr(base, "get_decoder") else base.model)


def completion_logps(
    model,
    input_ids: Tensor,
    completion_mask: Tensor,
    position_ids: Tensor,
    attention_mask: Tensor | None = None,
    seq_index: Tensor | None = None,
    n_seqs: int | None = None,
    chunk: int = 1024,
    keep_padding_mask: bool = False,
) -> tuple[Tensor, Tensor]:
    """Summed completion log-probs and completion token counts per sequence.

    Right-padded rows run without their padding mask unless ``keep_padding_mask``: in a causal decoder
    a real token attends only to positions at or before it, all real, so the mask cannot change a
    scored token; without it SDPA takes its fused causal kernel instead of materialising a (T, T)
    mask and attention probabilities per head (less memory and time; equality tested).

    Args:
        model: a transformers causal LM (``model.model`` the decoder, ``get_output_embeddings()`` the head),
            or a peft wrapper of one.
        input_ids: (R, T) padded rows, or (1, L) one packed row.
        completion_mask: (R, T) 1 where the token belongs to a completion (scored), else 0.
        position_ids: (R, T) positions restarting at 0 per sequence.
        attention_mask: (R, T) for padded rows; None for a packed row.
        seq_index: (R, T) sequence id of each token (packed rows); None means row r is sequence r.
        n_seqs: number of sequences (packed rows).
    Returns:
        logps (S,) float32 Σ log π(y_t | x, y_<t) over completion tokens, and counts (S,) of those tokens.
    """
    base, decoder = base_and_decoder(model)
    if attention_mask is not None and not keep_padding_mask and is_right_padded(attention_mask):
        # padding keeps counting positions, so transformers does not read a row as packed sequences
        steps = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        position_ids = torch.where(attention_mask.bool(), position_ids, steps)
        attention_mask = None
    out = decoder(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
    )
    hidden = out.last_hidden_state[:, :-1]  # (R, T-1, H): state t predicts token t+1
    scored = completion_mask[:, 1:].bool()  # (R, T-1)
    target = input_ids[:, 1:][scored]  # (N,)
    logp = token_logps(hidden[scored], base.get_output_embeddings(), target, chunk)  # (N,)
    if seq_index is None:
        seq_index = torch.arange(input_ids.shape[0], device=input_ids.device)[:, None].expand_as(input_ids)
        n_seqs = input_ids.shape[0]
    owner = seq_index[:, 1:][scored]  # (N,) which sequence each scored token belongs to
    sums = torch.zeros(n_seqs, dtype=torch.float32, device=logp.device).index_add(0, owner, logp)
    counts = torch.bincount(owner, minlength=n_seqs)
    return sums, counts


def shared_prompt_logps(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
    group: Tensor,
    chunk: int = 1024,
) -> tuple[Tensor, Tensor]:
    """Summed log π(y_i | x_{g(i)}) of S completions of G distinct prompts, running each prompt once.

    Two decoder calls in all: the G prompts in one batch, whose key/value cache is then gathered to
    the S completions (row i gets prompt g(i)'s), and the S completions on top of it, with the
    prompts' padding masked and positions continuing from each prompt's length. The result (values
    and gradients, which flow through the gathered cache) is that of ``completion_logps`` on the S full
    sequences (tested equal), at the cost of G prompts instead of S. Self-play samples K completions per
    prompt, so its training batches gain up to K× on the prompt tokens; batching the prompts also
    keeps the weight-gradient GEMMs at two per layer instead of two per prompt.

    Args:
        model: a transformers causal LM (or a peft wrapper of one) whose decoder accepts a cache.
        prompt_ids, prompt_mask: (G, P) right-padded prompts.
        completion_ids, completion_mask: (S, C) right-padded completions.
        group: (S,) the prompt row of each completion.
    Returns:
        logps (S,) float32 and counts (S,) of completion tokens.
    """
    from transformers import DynamicCache

    base, decoder = base_and_decoder(model)
    n, width = completion_ids.shape
    cache = DynamicCache(config=base.config)
    # right padding: a real prompt token attends only to real tokens before it, so no mask is needed
    prompt_out = decoder(input_ids=prompt_ids, past_key_values=cache, use_cache=True)  # (G, P, H)
    cache.batch_select_indices(group)  # (S, heads, P, d) per layer: the graph sums each prompt's gradients
    prompt_len = prompt_mask.sum(-1)[group]  # (S,)
    mask = torch.cat([prompt_mask[group], completion_mask], dim=1)  # (S, P + C): prompt padding masked
    position_ids = prompt_len[:, None] + torch.arange(width, device=completion_ids.device)  # (S, C)
    out = decoder(
        input_ids=completion_ids,
        attention_mask=mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
    )
    # (S, 1, H): the last prompt state of each sequence's prompt, which predicts y_0
    last_prompt_state = prompt_out.last_hidden_state[group, prompt_len - 1][:, None]
    states = torch.cat([last_prompt_state, out.last_hidden_state[:, :-1]], dim=1)  # (S, C, H): predict y_t
    scored = completion_mask.bool()  # (S, C)
    logp = token_logps(states[scored], base.get_output_embeddings(), completion_ids[scored], chunk)  # (N,)
    owner = torch.arange(n, device=completion_ids.device)[:, None].expand_as(completion_ids)[scored]
    sums = torch.zeros(n, dtype=torch.float32, device=logp.device).index_add(0, owner, logp)
    return sums, scored.sum(-1)


def compile_decoder(model: nn.Module) -> None:
    """``torch.compile`` the decoder of a causal LM (or of a peft wrapper) in place, with dynamic shapes
    (``engine.compile``). The LM head stays eager: only completion states reach it, through the chunked
    autograd function above, whose loop over chunks would recompile per chunk count."""
    _, decoder = base_and_decoder(model)
    decoder.compile(dynamic=True)


class PolicyLogps(nn.Module):
    """Wraps a causal LM so that DDP/FSDP see one forward: batch → (summed completion log-probs, counts)."""

    def __init__(self, lm: nn.Module, chunk: int, compile: bool = False) -> None:
        super().__init__()
        self.lm, self.chunk = lm, chunk
        if compile:
            compile_decoder(lm)

    def forward(
        self,
        input_ids=None,
        completion_mask=None,
        position_ids=None,
        attention_mask=None,
        seq_index=None,
        n_seqs=None,
        shared=None,
    ):
        # shared: sequences with their prompts batched once (policy.sequences.shared_prompt_groups)
        if shared is not None:
            return shared_prompt_logps(self.lm, **shared, chunk=self.chunk)
        return completion_logps(
            self.lm, input_ids, completion_mask, position_ids, attention_mask, seq_index, n_seqs, self.chunk
        )
