"""The preference-model trainer: resume equals uninterrupted, NaN guard, accumulation, modes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import tiny_bert

import genpref.train.rm as rm
from genpref.data.synthetic import make_synthetic_preferences
from genpref.errors import TrainingDiverged
from genpref.models.config import PreferenceModelConfig
from genpref.models.preference_model import PreferenceModel
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.metrics import read_metrics
from genpref.train.rm_config import RMTrainConfig

DATA = make_synthetic_preferences(48, seed=1)


def _cfg(out, **train) -> RMTrainConfig:
    base = dict(epochs=2, batch_size=4, log_every=1, progress=False, seed=3)
    base.update(train)
    return RMTrainConfig(
        model=PreferenceModelConfig(type="gpm", k=2, prompt_gate=True, backbone=tiny_bert(), max_length=64),
        optim=OptimConfig(lr=1e-3, warmup_ratio=0.1),
        train=TrainConfig(**base),
        output_dir=str(out),
    )


class _Crash(Exception):
    pass


def _fail_at(monkeypatch, call: int, how: str):
    """Make the loss raise (a crash) or go NaN on its `call`-th evaluation."""
    real = rm.preference_loss
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        if calls["n"] == call:
            if how == "crash":
                raise _Crash()
            return out * float("nan")
        return out

    monkeypatch.setattr(rm, "preference_loss", wrapped)


def _weights(path):
    return load_file(path / "model.safetensors")


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    straight = rm.train_preference_model_on(_cfg(tmp_path / "a"), DATA, DATA[:8])
    _fail_at(monkeypatch, call=15, how="crash")  # 24 steps in all; checkpoints every 5 steps
    with pytest.raises(_Crash):
        rm.train_preference_model_on(_cfg(tmp_path / "b", save_every=5), DATA, DATA[:8])
    assert not (tmp_path / "b" / "final").exists()
    monkeypatch.undo()
    resumed_cfg = _cfg(tmp_path / "b", save_every=5)
    resumed_cfg.resume = True
    resumed = rm.train_preference_model_on(resumed_cfg, DATA, DATA[:8])
    a = [r["loss"] for r in read_metrics(straight.metrics_path) if "loss" in r]
    b = [r["loss"] for r in read_metrics(resumed.metrics_path) if "loss" in r]
    assert len(a) == len(b) == 24
    assert a == pytest.approx(b, abs=1e-5)  # bit-equal on a CPU; GPU reductions reorder fp32 sums
    wa, wb = _weights(straight.final_dir), _weights(resumed.final_dir)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    assert resumed.eval_metrics["overall"]["accuracy"] == pytest.approx(
        straight.eval_metrics["overall"]["accuracy"]
    )


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    _fail_at(monkeypatch, call=7, how="nan")
    with pytest.raises(TrainingDiverged, match=r"step 7.*step-00000005"):
        rm.train_preference_model_on(_cfg(tmp_path, save_every=5), DATA, [])
    good = tmp_path / "checkpoints" / "step-00000005" / "model"
    assert PreferenceModel.from_pretrained(good).config.k == 2
    assert not (tmp_path / "final").exists()


def test_gradient_accumulation_equals_large_batch(tmp_path):
    big = rm.train_preference_model_on(_cfg(tmp_path / "big", batch_size=8, epochs=1, max_steps=3), DATA)
    acc = rm.train_preference_model_on(
        _cfg(tmp_path / "acc", batch_size=4, grad_accum=2, epochs=1, max_steps=3), DATA
    )
    wa, wb = _weights(big.final_dir), _weights(acc.final_dir)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    la = [r["loss"] for r in read_metrics(big.metrics_path) if "loss" in r]
    lb = [r["loss"] for r in read_metrics(acc.metrics_path) if "loss" in r]
    assert la == pytest.approx(lb, abs=1e-5)


def test_frozen_backbone_trains_only_the_head(tmp_path):
    cfg = _cfg(tmp_path, finetune="frozen", epochs=1)
    result = rm.train_preference_model_on(cfg, DATA)
    before = PreferenceModel.from_config(cfg.model).state_dict_for_save()
    after = _weights(result.final_dir)
    body = [k for k in after if k.startswith("backbone.")]
    assert all(torch.equal(before[k], after[k]) for k in body)
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_lora_and_bf16_runs_and_loss_decreases(tmp_path):
    cfg = _cfg(tmp_path, finetune="lora", precision="bf16", epochs=3)
    result = rm.train_preference_model_on(cfg, DATA, DATA[:16])
    losses = [r["loss"] for r in read_metrics(result.metrics_path) if "loss" in r]
    assert all(map(lambda x: x == x, losses))  # finite
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6
    saved = json.loads((result.final_dir / "genpref.json").read_text())
    assert saved["model"]["type"] == "gpm"
    assert not any("lora" in k for k in _weights(result.final_dir))  # merged, plain weights


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    rm.train_preference_model_on(_cfg(tmp_path, max_steps=1), DATA)
    from genpref.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume"):
        rm.train_preference_model_on(_cfg(tmp_path, max_steps=1), DATA)
    changed = _cfg(tmp_path, max_steps=1)
    changed.resume = True
    changed.optim.lr = 0.5
    with pytest.raises(ConfigError, match="optim.lr"):
        rm.train_preference_model_on(changed, DATA)


def test_disable_dropout_zeroes_modules_and_attention_attributes():
    from genpref.train.loop import disable_dropout

    class Attention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention_dropout = 0.1  # read directly by some attention classes (e.g. Llama's)
            self.is_causal = True  # bools are left alone

    model = torch.nn.Sequential(
        torch.nn.Linear(3, 3), torch.nn.Dropout(0.2), Attention(), torch.nn.Dropout(0.0)
    )
    assert disable_dropout(model) == 2
    assert model[1].p == 0.0 and model[2].attention_dropout == 0.0 and model[2].is_causal is True
    model.train()
    x = torch.ones(4, 3)
    assert torch.equal(model[1](x), x)  # dropout is now the identity


def test_plan_steps_group_by_prompt_keeps_groups_whole():
    from genpref.train.schedule import plan_steps

    groups = [g for g in "aabbbcdddd"]  # four prompts with 2, 3, 1, 4 comparisons
    plain = plan_steps(10, TrainConfig(batch_size=3, epochs=2, seed=1), 1)
    grouped = plan_steps(10, TrainConfig(batch_size=3, epochs=2, seed=1), 1, groups)
    for plan in (plain, grouped):  # every example exactly once per epoch
        epoch = [i for step in plan[:4] for micro in step for i in micro]
        assert sorted(epoch) == list(range(10))
    for e in range(2):
        order = [i for step in grouped[4 * e : 4 * e + 4] for micro in step for i in micro]
        keys = [groups[i] for i in order]
        runs = [k for j, k in enumerate(keys) if j == 0 or keys[j - 1] != k]
        assert sorted(runs) == ["a", "b", "c", "d"]  # each prompt's rows are consecutive
        for key in "abcd":  # the original order is kept inside a group
            inside = [i for i in order if groups[i] == key]
            assert inside == sorted(inside)
    assert grouped == plan_steps(10, TrainConfig(batch_size=3, epochs=2, seed=1), 1, groups)  # deterministic
    with pytest.raises(ValueError, match="groups has 3 keys"):
        plan_steps(10, TrainConfig(batch_size=3), 1, ["a", "b", "c"])


def test_plan_steps_group_by_length_batches_similar_lengths():
    from genpref.train import schedule
    from genpref.train.schedule import plan_steps

    lengths = [5, 100, 7, 98, 6, 99, 8, 97, 50, 51, 52, 3]  # three length clusters, 12 rows
    cfg = TrainConfig(batch_size=4, epochs=2, seed=3, group_by_length=True)
    plan = plan_steps(12, cfg, 1, lengths=lengths)
    assert len(plan) == 6
    for e in range(2):  # every row exactly once per epoch; each batch one cluster
        micro = [m for step in plan[3 * e : 3 * e + 3] for m in step]
        assert sorted(i for m in micro for i in m) == list(range(12))
        assert sorted(sorted(lengths[i] for i in m) for m in micro) == [
            [3, 5, 6, 7],  # (8 goes with the 50s: sorted windows are cut at fixed sizes)
            [8, 50, 51, 52],
            [97, 98, 99, 100],
        ]
    assert plan == plan_steps(12, cfg, 1, lengths=lengths)  # deterministic
    firsts = {
        tuple(
            plan_steps(12, TrainConfig(batch_size=4, seed=s, group_by_length=True), 1, lengths=lengths)[0][0]
        )
        for s in range(8)
    }
    assert len(firsts) > 1  # the order of the batches is shuffled (seeded), not longest-first
    # windows: with a window of one batch, grouping is local (the shuffled order decides who meets)
    old = schedule.LENGTH_WINDOW
    try:
        schedule.LENGTH_WINDOW = 1
        local = plan_steps(12, cfg, 1, lengths=lengths)
        plain = plan_steps(12, TrainConfig(batch_size=4, epochs=2, seed=3), 1)
        assert [sorted(m) for step in local for m in step] == [sorted(m) for step in plain for m in step]
    finally:
        schedule.LENGTH_WINDOW = old
    with pytest.raises(ValueError, match="lengths has 2 entries"):
        plan_steps(12, cfg, 1, lengths=[1, 2])
    with pytest.raises(ValueError, match="not both"):
        plan_steps(12, cfg, 1, groups=["a"] * 12, lengths=lengths)


def test_group_by_prompt_training_runs_and_is_refused_elsewhere(tmp_path):
    from genpref.train.loop import run_loop

    cfg = _cfg(tmp_path / "g", group_by_prompt=True, epochs=1)
    result = rm.train_preference_model_on(cfg, DATA, DATA[:8])
    assert result.steps == 12  # 48 rows / batch 4
    with pytest.raises(Exception, match="group_by_prompt is supported by preference-model training"):
        run_loop(None, None, None, 4, TrainConfig(group_by_prompt=True), OptimConfig(), tmp_path, None, "x")
    with pytest.raises(Exception, match="group_by_length is supported by genpref po and genpref selfplay"):
        run_loop(None, None, None, 4, TrainConfig(group_by_length=True), OptimConfig(), tmp_path, None, "x")
    with pytest.raises(Exception, match="choose one"):
        both = TrainConfig(group_by_length=True, group_by_prompt=True)
        run_loop(
            None, None, None, 4, both, OptimConfig(), tmp_path, None, "x", groups=[0] * 4, lengths=[1] * 4
        )


def test_lora_dropout_conflicts_with_disable_dropout():
    from genpref.errors import ConfigError
    from genpref.models.lora import LoraSettings

    with pytest.raises(ConfigError, match="would be zeroed by train.disable_dropout"):
        TrainConfig(finetune="lora", lora=LoraSettings(dropout=0.1))
    TrainConfig(finetune="lora", lora=LoraSettings(dropout=0.1), disable_dropout=False)  # explicit choice


def test_logged_epoch_counts_examples_seen_even_when_max_steps_cuts_the_plan(tmp_path):
    """epoch = examples trained on / training examples (it read done/len(plan)·epochs, so a run of
    epochs=100, max_steps=6 logged epoch 100 after six batches)."""
    cut = rm.train_preference_model_on(_cfg(tmp_path / "cut", epochs=100, max_steps=6), DATA)
    epochs = [r["epoch"] for r in read_metrics(cut.metrics_path) if "epoch" in r]
    assert len(epochs) == 6 and epochs == pytest.approx([epochs[0] * s for s in range(1, 7)], abs=1e-5)
    assert epochs[0] == pytest.approx(4 / len(DATA), rel=0.25)  # batch 4 of ~48 rows (eval rows held out)
    full = rm.train_preference_model_on(_cfg(tmp_path / "full", epochs=2), DATA)
    last = [r["epoch"] for r in read_metrics(full.metrics_path) if "epoch" in r][-1]
    assert last == pytest.approx(2.0, abs=0.1)
