"""Self-play per-iteration diagnostics: hand-computed values, and a tiny run that reports them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_bert, tiny_llama

from genpref.selfplay.diagnostics import (
    eta_from_targets,
    fit_diagnostics,
    kl_estimates,
    summarize_targets,
    target_agreement,
)


def test_target_summary_by_hand():
    s = summarize_targets([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["std"] == pytest.approx(math.sqrt(1.25))
    assert (s["min"], s["q25"], s["median"], s["q75"], s["max"]) == pytest.approx((1, 1.75, 2.5, 3.25, 4))
    assert s["mean_abs"] == 2.5 and s["n"] == 4


def test_eta_from_target_scale():
    assert eta_from_targets([1.0, -1.0], 2.0, fallback=5.0) == pytest.approx(2.0)  # std 1
    assert eta_from_targets([0.05, -0.05], 2.0, fallback=5.0) == pytest.approx(40.0)
    assert eta_from_targets([0.3, 0.3], 2.0, fallback=5.0) == 5.0  # nothing to scale


def test_fit_diagnostics_by_hand():
    exact = fit_diagnostics([2.0, -2.0], [1.0, -1.0], eta=2.0)
    assert exact["corr"] == pytest.approx(1) and exact["slope"] == pytest.approx(1)
    assert exact["r2"] == pytest.approx(1) and exact["rmse_target_units"] == pytest.approx(0)
    half = fit_diagnostics([1.0, -1.0], [1.0, -1.0], eta=2.0)
    # want = ±2, got ±1: slope ½; SS_res = 1 + 1, SS_tot = 4 + 4 → R² = 0.75; rmse = √(2/2) / 2
    assert half["slope"] == pytest.approx(0.5) and half["r2"] == pytest.approx(0.75)
    assert half["rmse_target_units"] == pytest.approx(0.5) and half["requested_std"] == pytest.approx(2)
    wrong = fit_diagnostics([-1.0, 1.0], [1.0, -1.0], eta=1.0)
    assert wrong["corr"] == pytest.approx(-1) and wrong["r2"] < 0


def test_kl_estimates_by_hand():
    r = math.log(2)
    out = kl_estimates([r, -r, 0.0, 0.0], [0, 0, 1, 1])
    assert out["kl_old_new"] == pytest.approx(0.0)
    # prompt 0: w = softmax(ln 2, −ln 2) = (0.8, 0.2) → 0.8 ln 2 − 0.2 ln 2 = 0.6 ln 2; prompt 1: 0
    assert out["kl_new_old"] == pytest.approx(0.3 * r)
    assert kl_estimates([-0.5, -1.5], [0, 0])["kl_old_new"] == pytest.approx(1.0)


def test_sppo_and_gpo_targets_agree_when_probabilities_stay_near_half():
    def game(a):
        s = np.array([[0.0, a], [-a, 0.0]])
        return 1 / (1 + np.exp(-s)), s

    (p1, s1), (p2, s2) = game(0.1), game(0.3)
    got = target_agreement([p1.tolist(), p2.tolist()], [s1.tolist(), s2.tolist()])
    sppo = np.concatenate([p1.mean(1) - 0.5, p2.mean(1) - 0.5])
    gpo = np.concatenate([s1.mean(1), s2.mean(1)])
    assert got == pytest.approx(np.corrcoef(sppo, gpo)[0, 1]) and got > 0.999
    (p3, s3) = game(6.0)  # saturated probabilities: the targets are no longer proportional
    assert target_agreement([p1.tolist(), p3.tolist()], [s1.tolist(), s3.tolist()]) < got


def test_instruction_is_appended_for_the_policy_only():
    from genpref.selfplay.config import PromptsConfig, SelfPlayConfig
    from genpref.selfplay.prompts import with_instruction
    from genpref.selfplay.run import policy_prompts

    assert with_instruction("Hi? ", "Be brief.") == "Hi?\n\nBe brief."
    conv = [
        {"role": "user", "content": "A"},
        {"role": "assistant", "content": "B"},
        {"role": "user", "content": "C"},
    ]
    got = with_instruction(conv, "Be brief.")
    assert got[-1]["content"] == "C\n\nBe brief." and conv[-1]["content"] == "C"  # input untouched
    cfg = SelfPlayConfig(prompts=PromptsConfig(instruction="Be brief."))
    assert policy_prompts(cfg, ["Q"]) == [[{"role": "user", "content": "Q\n\nBe brief."}]]


def test_progress_loss_is_in_target_units():
    from genpref.data.encode import Encoded
    from genpref.selfplay.recipe import SelfPlayItem, SelfPlayRecipe

    class Fixed(torch.nn.Module):
        def forward(self, **batch):
            return torch.tensor([-3.0, -5.0]), torch.tensor([2, 2])

    class Tok:
        pad_token_id = 0

    items = [
        SelfPlayItem(Encoded([1, 2, 3], 1, False), -4.0, 0.01),
        SelfPlayItem(Encoded([1, 2, 4], 1, False), -4.0, -0.01),
    ]
    recipe = SelfPlayRecipe(items, Tok(), eta=100.0, length_normalized=False, packing=False)
    out = recipe.micro_step(Fixed(), [0, 1], "cpu")
    # ρ = ±1, η g = ±1 → loss 0; target_mse = loss / η²
    assert out.losses.tolist() == [0.0, 0.0] and recipe.progress_keys == ("target_mse",)
    items[0].target = 0.02  # η g = 2: loss (1 − 2)² = 1, target_mse = 1e-4 = (1/100 − 0.02)²
    out = recipe.micro_step(Fixed(), [0, 1], "cpu")
    assert out.stats["target_mse"][0].item() == pytest.approx(1e-4)


@pytest.mark.slow
def test_iteration_rows_report_eta_fit_kl_caps_and_second_judge(tmp_path):
    """A tiny two-iteration run with η from the target scale, an instruction and a second judge:
    every iteration row carries the diagnostics the issue asks for, the plot is written."""
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel
    from genpref.selfplay.config import EvalConfig, PromptsConfig, SelfPlayConfig
    from genpref.selfplay.generate import SamplingConfig
    from genpref.selfplay.run import run_selfplay
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.po_config import PolicyConfig

    judges = []
    for seed, kind in ((0, "gpm"), (1, "bt")):
        torch.manual_seed(seed)
        path = tmp_path / f"judge_{kind}" / "final"
        PreferenceModel.from_config(
            PreferenceModelConfig(type=kind, k=2 if kind == "gpm" else 1, backbone=tiny_bert(), tau=1.0)
        ).save_pretrained(path)
        judges.append(str(path))
    cfg = SelfPlayConfig(
        algorithm="gpo",
        judge=judges[0],
        policy=PolicyConfig(model=tiny_llama()),
        prompts=PromptsConfig(limit=3, eval_limit=4, instruction="Answer briefly."),
        k=3,
        iterations=2,
        target_nats=2.0,
        sampling=SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=8),
        optim=OptimConfig(lr=1e-3),
        train=TrainConfig(batch_size=3, progress=False),
        eval=EvalConfig(max_new_tokens=8, judges=[judges[1]]),
        output_dir=str(tmp_path / "run"),
    )
    rows = run_selfplay(cfg)
    assert [r["iteration"] for r in rows] == [1, 2]
    for r in rows:
        assert r["eta"] == pytest.approx(2.0 / r["targets"]["std"])  # η · std(g) = target_nats
        assert set(r["fit"]) >= {"corr", "slope", "r2", "kl_new_old", "kl_old_new", "exact_kl"}
        assert r["fit"]["exact_kl"] is True
        assert 0 <= r["vs_policy0"]["cap_share_new"] <= 1 and 0 <= r["vs_previous"]["winrate"] <= 1
        second = r["judges"][judges[1]]
        assert 0 <= second["vs_policy0"]["winrate"] <= 1 and second["vs_policy0"]["n"] == 4
        assert -1 <= r["sppo_gpo_target_corr"] <= 1
    # the policy trained on the instruction-suffixed prompt
    first = json.loads((Path(cfg.output_dir) / "iter-0" / "train_rows.jsonl").read_text().splitlines()[0])
    from genpref.models.backbone import load_tokenizer

    text = load_tokenizer(tiny_llama()).decode(first["prompt_ids"])
    assert "Answer briefly." in text
    # iteration 2's "vs previous" compares with iteration 1's responses, not π_0's
    assert rows[1]["vs_previous"]["mean_len_old"] == pytest.approx(rows[0]["vs_policy0"]["mean_len_new"])
    assert (Path(cfg.output_dir) / "selfplay.png").stat().st_size > 0
