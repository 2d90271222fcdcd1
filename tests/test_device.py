"""Device placement of models created outside accelerator.prepare, fused AdamW, and the CPU bf16
fallback. Placement is checked by construction: a model placed on the "meta" device must have every
tensor there, and a step whose models do not all sit on its device must stop with their name."""

from __future__ import annotations

import logging

import pytest
import torch
from tiny_models import tiny_llama

import genpref.train.device as device
import genpref.train.po as po
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.po_config import EngineConfig, POTrainConfig


def _on(model: torch.nn.Module, kind: str) -> bool:
    return all(t.device.type == kind for t in (*model.parameters(), *model.buffers()))


@pytest.mark.parametrize(
    ("precision", "where", "fast", "insist", "expected"),
    [
        ("bf16", "cpu", False, False, "fp32"),  # AVX2-only CPU: fall back
        ("bf16", "cpu", False, True, "bf16"),  # ... unless the user insists
        ("bf16", "cpu", True, False, "bf16"),  # native bf16 CPU
        ("bf16", "cuda", False, False, "bf16"),  # GPUs are not affected
        ("fp32", "cpu", False, False, "fp32"),
    ],
)
def test_bf16_falls_back_to_fp32_on_cpus_without_native_bf16(
    monkeypatch, caplog, precision, where, fast, insist, expected
):
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: fast)
    with caplog.at_level(logging.WARNING, logger="genpref"):
        assert device.resolve_precision(precision, where, insist) == expected
    warned = precision == "bf16" and where == "cpu" and not fast
    assert ("no native bf16" in caplog.text) == warned


def test_cpu_capability_is_reported():
    assert device.cpu_capability() == torch.backends.cpu.get_cpu_capability()
    assert isinstance(device.cpu_has_fast_bf16(), bool)


def test_a_bf16_run_on_a_slow_bf16_cpu_trains_in_fp32(tmp_path, monkeypatch):
    from accelerate.state import AcceleratorState

    from genpref.train.loop import start_run

    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    # on a GPU machine the run's device is the GPU, where bf16 stays bf16
    monkeypatch.setattr(device, "default_device", lambda: torch.device("cpu"))
    acc, _ = start_run({"x": 1}, TrainConfig(precision="bf16"), tmp_path / "a", resume=False)
    assert acc.mixed_precision == "no"
    acc, _ = start_run(
        {"x": 1}, TrainConfig(precision="bf16", allow_slow_bf16=True), tmp_path / "b", resume=False
    )
    assert acc.mixed_precision == "bf16"
    AcceleratorState._reset_state(reset_partial_state=False)


def test_check_on_device_names_the_misplaced_model():
    good, bad = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2).to("meta")
    device.check_on_device([("the policy", good)], "cpu")
    with pytest.raises(RuntimeError, match=r"the live reference has 'weight' on meta"):
        device.check_on_device([("the policy", good), ("the live reference", bad)], "cpu")


def _lm():
    from genpref.policy.model import load_policy

    return load_policy(tiny_llama())


def test_live_reference_copy_is_placed_on_the_step_device():
    from contextlib import nullcontext

    lm, _ = _lm()
    cfg = POTrainConfig(engine=EngineConfig(reference="live"))
    ref = po.LiveReference(lm, cfg, "meta", nullcontext)
    assert _on(ref.module, "meta") and _on(lm, "cpu")  # the frozen copy moved, the policy did not
    assert not any(p.requires_grad for p in ref.module.parameters())


def test_a_step_with_a_misplaced_reference_stops_before_computing(tmp_path):
    from contextlib import nullcontext

    from genpref.data.synthetic import make_synthetic_preferences

    lm, tok = _lm()
    cfg = POTrainConfig(engine=EngineConfig(reference="live"))
    items = po.tokenize_pairs(tok, make_synthetic_preferences(2, seed=0), cfg)
    ref = po.LiveReference(lm, cfg, "meta", nullcontext)  # as if the step ran on another device
    recipe = po.PreferenceOptimizationRecipe(cfg, items, [], tok, ref)
    with pytest.raises(RuntimeError, match="the live reference"):
        recipe.micro_step(po.PolicyLogps(lm, 64), [0, 1], torch.device("cpu"))
    placed = po.LiveReference(lm, cfg, "cpu", nullcontext)
    out = po.PreferenceOptimizationRecipe(cfg, items, [], tok, placed).micro_step(
        po.PolicyLogps(lm, 64), [0, 1], torch.device("cpu")
    )
    assert out.losses.shape == (2,) and torch.allclose(out.losses, torch.full((2,), 0.693147), atol=1e-5)


def test_stand_alone_preference_models_load_on_the_requested_device(tmp_path):
    from tiny_models import tiny_bert

    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    PreferenceModel.from_config(PreferenceModelConfig(type="gpm", k=2, backbone=tiny_bert())).save_pretrained(
        tmp_path / "judge"
    )
    assert _on(PreferenceModel.from_pretrained(tmp_path / "judge"), "cpu")
    assert _on(PreferenceModel.from_pretrained(tmp_path / "judge", device="meta"), "meta")


def test_adamw_is_fused_only_when_asked():
    from genpref.train.schedule import build_optimizer

    model = torch.nn.Linear(3, 2)
    plain, _ = build_optimizer(model, OptimConfig(), 4)
    fused, _ = build_optimizer(model, OptimConfig(), 4, fused=True)
    assert not plain.defaults["fused"] and fused.defaults["fused"]
    rms, _ = build_optimizer(model, OptimConfig(name="rmsprop"), 4, fused=True)  # AdamW only
    assert isinstance(rms, torch.optim.RMSprop)


def test_fused_adamw_is_chosen_where_accelerate_keeps_the_optimizer():
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from genpref.train.loop import _fused_adamw

    acc = lambda kind, dist: SimpleNamespace(device=torch.device(kind), distributed_type=dist)  # noqa: E731
    assert _fused_adamw(acc("cuda", DistributedType.NO))
    assert _fused_adamw(acc("cuda", DistributedType.MULTI_GPU))
    assert not _fused_adamw(acc("cuda", DistributedType.FSDP))
    assert not _fused_adamw(acc("cuda", DistributedType.DEEPSPEED))
    assert _fused_adamw(acc("cpu", DistributedType.NO))
    assert _fused_adamw(acc("cpu", DistributedType.MULTI_CPU))
