"""policy.attention and engine.compile (issue 14): the GPU path's options, checked on CPU.

Flex attention runs forward on a CPU (its backward is CUDA-only), so a packed row through flex attention is
compared with padded rows through sdpa without gradients, and training with it on a CPU is refused with a
clear error. ``engine.compile`` is compared with the eager decoder in value and gradient.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_llama

from genpref.data.encode import Encoded
from genpref.errors import ConfigError
from genpref.policy.logprobs import PolicyLogps, completion_logps
from genpref.policy.model import load_policy
from genpref.policy.sequences import make_batch, resolve_packing
from genpref.train.device import check_trainable_attention

SEQS = [  # (token ids, prompt length): different lengths, so the padded batch has padding
    (list(range(5, 12)), 3),
    (list(range(40, 52)), 4),
    (list(range(7, 12)), 2),
    (list(range(60, 80)), 6),
]


def _seqs() -> list[Encoded]:
    return [Encoded(ids, prompt_len, False) for ids, prompt_len in SEQS]


def _perturb(model, seed: int = 1, scale: float = 0.05):
    """Noise on every weight, so that no two positions give the same hidden state by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model.eval()


def test_load_policy_passes_the_attention_implementation():
    lm, _ = load_policy(tiny_llama(), attention="eager")
    assert lm.config._attn_implementation == "eager"
    default, _ = load_policy(tiny_llama())
    assert default.config._attn_implementation == "sdpa"  # "auto": transformers' own default


def test_packing_auto_follows_the_attention():
    for attention, packs in [("sdpa", False), ("eager", False), ("flex_attention", True)]:
        lm, _ = load_policy(tiny_llama(), attention=attention)
        assert resolve_packing("auto", lm) is packs, attention
        assert resolve_packing(False, lm) is False and resolve_packing(True, lm) is True


def test_flex_attention_packed_row_equals_padded_sdpa():
    """One packed row through flex attention (a block mask from the restarting positions) gives every
    sequence the log-probs of right-padded rows through sdpa: no token attends across sequences."""
    sdpa, tok = load_policy(tiny_llama())
    flex, _ = load_policy(tiny_llama(), attention="flex_attention")
    _perturb(sdpa), _perturb(flex)
    seqs = _seqs()
    with torch.no_grad():
        padded = completion_logps(sdpa, **make_batch(seqs, packing=False, pad_id=tok.pad_token_id))
        packed = completion_logps(flex, **make_batch(seqs, packing=True, pad_id=tok.pad_token_id))
        alone = [
            completion_logps(flex, **make_batch([s], packing=True, pad_id=tok.pad_token_id))[0] for s in seqs
        ]
    torch.testing.assert_close(packed[0], padded[0], rtol=1e-5, atol=1e-5)
    assert packed[1].tolist() == padded[1].tolist() == [len(ids) - p for ids, p in SEQS]
    torch.testing.assert_close(packed[0], torch.cat(alone), rtol=1e-5, atol=1e-5)


def test_flex_attention_training_on_cpu_is_refused_with_the_fix():
    flex, _ = load_policy(tiny_llama(), attention="flex_attention")
    with pytest.raises(ConfigError, match=r"flex_attention.*\n.*fix: policy.attention=auto"):
        check_trainable_attention(flex, "cpu")
    check_trainable_attention(flex, "cuda")  # a GPU trains it
    sdpa, _ = load_policy(tiny_llama())
    check_trainable_attention(sdpa, "cpu")


@pytest.mark.slow
def test_compiled_decoder_equals_eager_in_value_and_gradient():
    """engine.compile: torch.compile of the decoder (inductor, dynamic shapes) changes no log-prob or
    gradient beyond float rounding, also for a second batch shape."""
    eager_lm, tok = load_policy(tiny_llama())
    compiled_lm, _ = load_policy(tiny_llama())
    _perturb(eager_lm), _perturb(compiled_lm)
    eager, compiled = PolicyLogps(eager_lm, 1024), PolicyLogps(compiled_lm, 1024, compile=True)
    weights = torch.tensor([1.0, -0.5, 2.0, 0.25])
    for seqs in (_seqs(), _seqs()[:3]):
        batch = make_batch(seqs, packing=False, pad_id=tok.pad_token_id)
        grads = []
        for model in (eager, compiled):
            model.zero_grad(set_to_none=True)
            logps, _ = model(**batch)
            (logps * weights[: len(seqs)]).sum().backward()
            grads.append((logps.detach(), [p.grad.clone() for p in model.parameters()]))
        torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-5, atol=1e-5)
        for a, b in zip(grads[1][1], grads[0][1]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())
