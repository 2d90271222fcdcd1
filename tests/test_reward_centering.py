"""BT reward centring (``RMTrainConfig.center_rewards_coefficient``)."""

from __future__ import annotations

import pytest
import torch

from genpref.losses.preference import PreferenceLossType, preference_loss, reward_centering_penalty


def test_penalty_hand_values():
    first, second = torch.tensor([1.5, 2.0, -1.0]), torch.tensor([-0.5, -2.0, -1.0])
    assert reward_centering_penalty(first, second).tolist() == pytest.approx([1.0, 0.0, 4.0])


def test_the_recipe_adds_the_penalty_to_the_bt_loss():
    """micro_step's per-pair loss = −log σ(r_c − r_r) + c·(r_c + r_r)², from the model's own rewards."""
    from tiny_models import tiny_bert

    from genpref.data.synthetic import make_synthetic_preferences
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.rm import PreferenceRecipe
    from genpref.train.rm_config import RMTrainConfig

    model = PreferenceModel.from_config(
        PreferenceModelConfig(type="bt", backbone=tiny_bert(), head_bias=True)
    )
    with torch.no_grad():  # a bias on the reward head, so the rewards are far from centred
        model.head.bias.fill_(3.0)
    feats = [model.featurize(ex) for ex in make_synthetic_preferences(4, seed=0)]
    losses = {}
    for c in (0.0, 0.5):
        cfg = RMTrainConfig(model=model.config, center_rewards_coefficient=c)
        losses[c] = PreferenceRecipe(cfg, feats, []).micro_step(model, [0, 1, 2, 3], "cpu").losses.detach()
    out = model(**model.collate(feats))
    r = out["rewards"].detach()
    assert torch.allclose(out["logits"].detach(), r[:, 0] - r[:, 1], atol=1e-6)
    expected_bt = preference_loss(PreferenceLossType.HARD, r[:, 0] - r[:, 1], out["label"])
    assert torch.allclose(losses[0.0], expected_bt, atol=1e-6)
    assert torch.allclose(losses[0.5], expected_bt + 0.5 * (r[:, 0] + r[:, 1]) ** 2, atol=1e-5)
    assert (losses[0.5] - losses[0.0]).min() > 1.0  # rewards near 3 + 3: the penalty is large


def test_centring_a_gpm_is_refused_with_the_fix():
    from genpref.errors import ConfigError
    from genpref.models.config import PreferenceModelConfig
    from genpref.train.rm_config import RMTrainConfig

    with pytest.raises(ConfigError, match="center_rewards_coefficient.*BT"):
        RMTrainConfig(model=PreferenceModelConfig(type="gpm"), center_rewards_coefficient=0.01)
