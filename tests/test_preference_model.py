"""PreferenceModel: pooling, padding sides, antisymmetry, costs, checkpoints and paper import."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_bert, tiny_llama

from genpref.data.types import PreferenceExample
from genpref.models.config import PreferenceModelConfig
from genpref.models.preference_model import PreferenceModel

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    "Name a colour.",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello in French, please."}],
]
A = ["Paris is the capital of France.", "Blue.", "Bonjour!"]
B = ["I think it is Lyon, or maybe Marseille, hard to say.", "A colour? No.", "Hello."]


def _model(backbone: str, **kw) -> PreferenceModel:
    torch.manual_seed(0)
    return PreferenceModel.from_config(PreferenceModelConfig(backbone=backbone, **kw)).eval()


def test_padding_side_does_not_change_scores_decoder_and_encoder():
    for backbone in (tiny_llama(), tiny_bert()):
        for cfg in (dict(type="gpm", k=2, prompt_gate=True), dict(type="bt")):
            model = _model(backbone, **cfg)
            model.padding_side = "right"
            right = model.score(PROMPTS, A, B)
            emb_right, _ = model.embed(PROMPTS, A)
            model.padding_side = "left"
            left = model.score(PROMPTS, A, B)
            emb_left, _ = model.embed(PROMPTS, A)
            assert torch.allclose(right, left, atol=1e-5), (backbone, cfg)
            assert torch.allclose(emb_right, emb_left, atol=1e-5)


def test_decoder_embedding_is_read_at_last_real_token():
    model = _model(tiny_llama(), type="bt")
    alone, _ = model.embed(PROMPTS[:1], A[:1])
    batched, _ = model.embed(PROMPTS, A)  # padded next to longer rows
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_real_model_scores_are_antisymmetric_with_self_preference_half():
    for cfg in (dict(type="gpm", k=2, prompt_gate=True), dict(type="bt")):
        for backbone in (tiny_llama(), tiny_bert()):
            model = _model(backbone, **cfg)
            ab, ba = model.score(PROMPTS, A, B), model.score(PROMPTS, B, A)
            assert torch.allclose(ab, -ba, atol=1e-5)
            assert torch.allclose(model.prob(PROMPTS, A, A), torch.full((3,), 0.5), atol=1e-6)


def test_rank_costs_k_forwards_for_gpm_and_k_squared_for_pairpm():
    responses = ["Paris.", "Lyon.", "It is Paris, the largest city.", "No idea.", "Paris!!"]
    k = len(responses)
    gpm = _model(tiny_llama(), type="gpm", k=2, prompt_gate=True)
    r = gpm.rank(PROMPTS[0], responses)
    assert r.forwards == k
    assert torch.allclose(r.prob_matrix + r.prob_matrix.T, torch.ones(k, k), atol=1e-5)
    assert torch.allclose(r.score_vs_mixture, r.score_matrix.mean(1), atol=1e-5)
    # the ranking matrix agrees with pairwise scoring
    pair = gpm.score([PROMPTS[0]], [responses[0]], [responses[2]])
    assert torch.allclose(r.score_matrix[0, 2], pair[0], atol=1e-4)
    gated_encoder = _model(tiny_bert(), type="gpm", k=2, prompt_gate=True)
    assert gated_encoder.rank(PROMPTS[0], responses).forwards == k + 1  # one prompt-only forward
    # chunked: still one prompt-only forward per rank() call, and the same numbers
    chunked = gated_encoder.rank(PROMPTS[0], responses, batch_size=2)
    assert chunked.forwards == k + 1
    assert torch.allclose(
        chunked.score_matrix, gated_encoder.rank(PROMPTS[0], responses).score_matrix, atol=1e-5
    )
    pairpm = _model(tiny_bert(), type="pairpm")
    rp = pairpm.rank(PROMPTS[0], responses)
    assert rp.forwards == k * (k - 1)
    assert torch.all(rp.prob_matrix.diagonal() == 0.5)


def test_training_forward_matches_inference_score():
    model = _model(tiny_llama(), type="gpm", k=2, prompt_gate=True)
    examples = [PreferenceExample(prompt=p, chosen=a, rejected=b) for p, a, b in zip(PROMPTS, A, B)]
    with torch.no_grad():
        out = model(**model.collate([model.featurize(e) for e in examples]))
    expected = model.score(PROMPTS, A, B) / model.config.temperature
    assert torch.allclose(out["logits"], expected, atol=1e-4)


def _assert_roundtrip(model: PreferenceModel, tmp_path) -> None:
    model.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert loaded.config == model.config
    if model.config.type == "pairpm":
        assert torch.equal(loaded.score(PROMPTS, A, B), model.score(PROMPTS, A, B))
    else:
        assert torch.equal(loaded.embed(PROMPTS, A)[0], model.embed(PROMPTS, A)[0])
        assert torch.equal(loaded.score(PROMPTS, A, B), model.score(PROMPTS, A, B))


def test_checkpoint_roundtrip_is_exact(tmp_path):
    for i, cfg in enumerate(
        (dict(type="gpm", k=3, prompt_gate=True, tau=0.2), dict(type="bt"), dict(type="pairpm"))
    ):
        for j, backbone in enumerate((tiny_llama(), tiny_bert())):
            _assert_roundtrip(_model(backbone, **cfg), tmp_path / f"{i}-{j}")
    saved = (tmp_path / "0-0" / "genpref.json").read_text()
    for key in (
        '"k": 3',
        '"prompt_gate": true',
        '"tau": 0.2',
        '"sign": 1',
        '"l2_normalize": true',
        '"pooling": "last"',
    ):
        assert key in saved


def test_lora_checkpoint_merges_adapter(tmp_path):
    from genpref.models.lora import LoraSettings, apply_lora

    model = _model(tiny_llama(), type="gpm", k=1)
    model.backbone = apply_lora(model.backbone, LoraSettings(r=4, alpha=8))
    for name, p in model.backbone.named_parameters():  # make the adapter non-zero
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    before = model.embed(PROMPTS, A)[0]
    model.backbone.disable_adapter_layers()
    base_only = model.embed(PROMPTS, A)[0]
    model.backbone.enable_adapter_layers()
    assert not torch.allclose(before, base_only, atol=1e-4)  # the adapter matters
    model.save_pretrained(tmp_path)
    loaded = PreferenceModel.from_pretrained(tmp_path)
    assert torch.allclose(loaded.embed(PROMPTS, A)[0], before, atol=1e-5)


def test_builtin_minilm_loads_offline_with_mean_pooling():
    model = _model("minilm", type="gpm", k=1)
    assert model.is_encoder and model.pooling == "mean"
    emb, lam = model.embed(PROMPTS, A)
    assert emb.shape == (3, 2) and lam is None
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)  # L2-normalised


def test_config_refuses_meaningless_combinations():
    from genpref.errors import ConfigError
    from genpref.models.config import PreferenceModelConfig

    with pytest.raises(ConfigError, match="k=1 does nothing"):
        PreferenceModelConfig(type="gpm", k=1, prompt_gate=True)
    with pytest.raises(ConfigError, match="only defined for model.type=gpm"):
        PreferenceModelConfig(type="bt", prompt_gate=True)
    assert PreferenceModelConfig(type="gpm", k=2, prompt_gate=True).embedding_dim == 4
