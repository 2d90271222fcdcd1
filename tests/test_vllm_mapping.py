"""The vLLM backend's output mapping, tested without vLLM or a GPU (stand-in output objects)."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import pytest

from genpref.selfplay.vllm_backend import samples_from_request_output


def _completion(ids, logps, reason):
    return NS(
        token_ids=ids,
        logprobs=[{t: NS(logprob=lp), 99: NS(logprob=-9.0)} for t, lp in zip(ids, logps)],
        finish_reason=reason,
    )


def test_sums_sampled_token_logprobs_and_flags_finished():
    out = NS(
        outputs=[
            _completion([5, 7, 2], [-0.5, -1.25, -0.25], "stop"),
            _completion([5, 6], [-2.0, -3.0], "length"),
        ]
    )
    samples = samples_from_request_output(out, eos_token_id=2, decode=lambda ids: " ".join(map(str, ids)))
    assert [s.logp for s in samples] == [-2.0, -5.0]
    assert [s.finished for s in samples] == [True, False]
    assert samples[0].token_ids == [5, 7, 2] and samples[0].text == "5 7 2"
    assert all(math.isfinite(s.logp) for s in samples)


def test_missing_logprobs_is_a_clear_error():
    out = NS(outputs=[NS(token_ids=[1, 2], logprobs=None, finish_reason="stop")])
    with pytest.raises(ValueError, match="logprobs=0"):
        samples_from_request_output(out, eos_token_id=2, decode=str)


def test_generator_without_vllm_names_the_fix():
    from genpref.errors import ConfigError
    from genpref.selfplay.generate import SamplingConfig
    from genpref.selfplay.vllm_backend import VLLMGenerator

    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"genpref\[vllm\]"):
            VLLMGenerator("any", SamplingConfig())
    else:  # pragma: no cover - only on machines with vLLM
        pytest.skip("vLLM is installed here; the error path is not reachable")
