"""Importing GPM heads laid out as in the paper's released checkpoints (synthetic state dict)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_llama
from transformers import AutoConfig, AutoModel, AutoTokenizer

from genpref.data.encode import encode_response
from genpref.errors import ConfigError
from genpref.models.paper import from_paper_checkpoint, from_paper_state_dict

PROMPT = [{"role": "user", "content": "Which is larger, 3 or 5?"}]


def _paper_state_dict(k: int, gate: bool):
    """A causal-LM state dict (decoder under 'model.') plus value_head / prompt_head, as released."""
    path = tiny_llama()
    config = AutoConfig.from_pretrained(path)
    torch.manual_seed(7)
    body = AutoModel.from_config(config)
    state = {f"model.{key}": v for key, v in body.state_dict().items()}
    state["lm_head.weight"] = torch.randn(config.vocab_size, config.hidden_size)  # ignored
    state["value_head.weight"] = torch.randn(2 * k, config.hidden_size)
    if gate:
        state["prompt_head.weight"] = torch.randn(k, config.hidden_size)
    return state, config, AutoTokenizer.from_pretrained(path), body


def _reference_score(body, tokenizer, state, k, response_a, response_b, tau=0.1):
    """The paper's recipe written out independently: last-token value head, L2 norm, explicit R."""

    def run(response):
        enc = encode_response(tokenizer, PROMPT, response, max_length=512, is_encoder=False)
        ids = torch.tensor([enc.input_ids])
        with torch.no_grad():
            hidden = body(input_ids=ids).last_hidden_state[0]  # (T, H)
        v = F.normalize(hidden[-1] @ state["value_head.weight"].T, dim=-1)
        return v, hidden[enc.prompt_len - 1]

    va, h_prompt = run(response_a)
    vb, _ = run(response_b)
    lam = (
        torch.softmax(h_prompt @ state["prompt_head.weight"].T, -1)
        if "prompt_head.weight" in state
        else torch.ones(k)
    )
    R = torch.zeros(2 * k, 2 * k)
    for block in range(k):
        R[2 * block, 2 * block + 1] = -lam[block]
        R[2 * block + 1, 2 * block] = lam[block]
    score = va @ R.T @ vb  # the released code's v_aᵀ Rᵀ v_b
    return score, torch.sigmoid(score / tau)


@pytest.mark.parametrize("k,gate", [(1, False), (1, True), (2, True), (3, True)])
def test_imported_model_reproduces_the_paper_formula(k, gate):
    state, config, tokenizer, body = _paper_state_dict(k, gate)
    model = from_paper_state_dict(state, config, tokenizer)
    # a one-block gate is softmax over one logit, identically 1: imported without it
    assert model.config.k == k and model.config.prompt_gate == (gate and k > 1)
    assert model.config.temperature == 0.1
    a, b = "5 is larger.", "3, obviously, since it comes first."
    expected_score, expected_prob = _reference_score(body, tokenizer, state, k, a, b)
    assert torch.allclose(model.score([PROMPT], [a], [b])[0], expected_score, atol=1e-5)
    assert torch.allclose(model.prob([PROMPT], [a], [b])[0], expected_prob, atol=1e-5)


def test_import_from_folder_and_errors(tmp_path):
    from safetensors.torch import save_file

    state, config, tokenizer, _ = _paper_state_dict(2, True)
    config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    model = from_paper_checkpoint(tmp_path)
    assert model.config.k == 2
    bad = dict(state)
    bad["value_head.weight"] = torch.randn(3, config.hidden_size)
    with pytest.raises(ConfigError, match="2k rows"):
        from_paper_state_dict(bad, config, tokenizer)
    with pytest.raises(ConfigError, match="value_head"):
        from_paper_state_dict({k: v for k, v in state.items() if k != "value_head.weight"}, config, tokenizer)
    with pytest.raises(ConfigError, match="safetensors"):
        from_paper_checkpoint(tmp_path / "nothing-here")
