"""The chunked LM head + log-softmax: equal to the naive full-logits route in fp32, and in the compute
dtype (bf16 under autocast) for all of its GEMMs, the backward pass included, within bf16 tolerance."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from genpref.policy.logprobs import token_logps

N, H, V = 24, 16, 50


def _inputs(bias: bool):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(N, H, generator=gen, requires_grad=True)
    head = torch.nn.Linear(H, V, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randn(V, H, generator=gen) * 0.3)
        if bias:
            head.bias.copy_(torch.randn(V, generator=gen))
    target = torch.randint(0, V, (N,), generator=gen)
    return hidden, head, target


def _naive(hidden, head, target):
    return torch.log_softmax(head(hidden).float(), -1).gather(-1, target[:, None]).squeeze(-1)


def _grads(out, hidden, head):
    weights = torch.linspace(-1, 1, N)  # a non-uniform upstream gradient
    return torch.autograd.grad((out * weights).sum(), [hidden, *head.parameters()])


def test_fp32_equals_full_log_softmax_in_value_and_gradient():
    for bias in (False, True):
        hidden, head, target = _inputs(bias)
        got = token_logps(hidden, head, target, chunk=5)  # chunks of 5, 5, ..., 4
        want = _naive(hidden, head, target)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        for g, w in zip(_grads(got, hidden, head), _grads(want, hidden, head)):
            torch.testing.assert_close(g, w, rtol=0, atol=1e-5)


class _MatmulDtypes(TorchDispatchMode):
    """Records the dtype of every matrix product (aten mm / addmm / bmm) that runs."""

    def __init__(self):
        super().__init__()
        self.dtypes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in ("mm", "addmm", "addmm_", "bmm"):
            self.dtypes.append(args[1].dtype if "addmm" in func.overloadpacket.__name__ else args[0].dtype)
        return func(*args, **(kwargs or {}))


def test_bf16_autocast_runs_every_head_gemm_in_bf16_within_tolerance():
    hidden, head, target = _inputs(bias=True)
    want = _naive(hidden, head, target)
    want_grads = _grads(want, hidden, head)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = token_logps(hidden, head, target, chunk=7)
    record = _MatmulDtypes()
    with record:
        grads = _grads(got, hidden, head)
    assert record.dtypes and set(record.dtypes) == {torch.bfloat16}  # backward too, outside autocast
    assert got.dtype == torch.float32  # log-sum-exp and outputs in fp32
    # bf16 logits carry ~2^-8 relative error: |logit| < 4 here, so < 0.05 per token
    torch.testing.assert_close(got, want.detach(), rtol=0, atol=0.05)
    for g, w, p in zip(grads, want_grads, [hidden, *head.parameters()]):
        assert g.dtype == p.dtype  # fp32 master weights get fp32 gradients
        torch.testing.assert_close(g, w, rtol=0, atol=0.03 * float(w.abs().max()))
