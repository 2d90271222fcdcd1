"""Offline preference optimisation and SFT recipes on a tiny Llama: every loss runs, the reference
cache is reused and invalidated, live and precomputed references agree, resume equals uninterrupted."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import tiny_llama

import genpref.train.po as po
from genpref.data.completions import unpair
from genpref.data.synthetic import make_synthetic_preferences, write_jsonl
from genpref.losses.policy import PolicyLoss
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.metrics import read_metrics
from genpref.train.po_config import EngineConfig, LossConfig, PolicyConfig, POTrainConfig

DATA = make_synthetic_preferences(16, seed=4)


def _cfg(tmp_path, name="run", loss="dpo", **train) -> POTrainConfig:
    base = dict(epochs=1, batch_size=4, log_every=1, progress=False, seed=1)
    base.update(train)
    return POTrainConfig(
        policy=PolicyConfig(model=tiny_llama(), max_length=96),
        loss=LossConfig(name=loss),
        engine=EngineConfig(cache_dir=str(tmp_path / "cache")),
        optim=OptimConfig(lr=1e-3, warmup_ratio=0.0),
        train=TrainConfig(**base),
        output_dir=str(tmp_path / name),
    )


def _losses(result) -> list[float]:
    return [r["loss"] for r in read_metrics(result.metrics_path) if "loss" in r and "eval_loss" not in r]


@pytest.mark.parametrize("loss", [k.value for k in PolicyLoss])
def test_every_loss_trains(tmp_path, loss):
    kind = PolicyLoss(loss)
    data = DATA if kind.paired else unpair(DATA)
    cfg = _cfg(tmp_path, loss=loss)
    if kind.uses_label_smoothing:
        cfg.loss.label_smoothing = 0.1
    result = po.train_policy_on(cfg, data, data[:4])
    losses = _losses(result)
    assert len(losses) == result.steps and all(map(torch.isfinite, torch.tensor(losses)))
    assert (result.final_dir / "model.safetensors").exists() and (
        result.final_dir / "tokenizer_config.json"
    ).exists()
    assert set(result.eval_metrics) >= {"loss"}


def test_dpo_first_step_is_log2_and_loss_decreases(tmp_path):
    result = po.train_policy_on(_cfg(tmp_path, epochs=6), DATA)
    losses = _losses(result)
    assert losses[0] == pytest.approx(0.693147, abs=1e-4)  # policy == reference at step 1: −log σ(0)
    assert sum(losses[-4:]) / 4 < losses[0] - 0.05


def test_reference_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    calls = []
    real = (
        po.cached_reference_logps.__wrapped__ if hasattr(po.cached_reference_logps, "__wrapped__") else None
    )
    import genpref.policy.reference as ref

    original = ref.compute_logps

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(ref, "compute_logps", counting)
    po.train_policy_on(_cfg(tmp_path, "a", max_steps=1), DATA)
    po.train_policy_on(_cfg(tmp_path, "b", max_steps=1), DATA)  # same model and data: cache hit
    assert calls == [32]
    po.train_policy_on(_cfg(tmp_path, "c", max_steps=1), DATA[:12])  # other data: recomputed
    assert calls == [32, 24]
    assert real is None
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2


def test_live_reference_matches_precomputed(tmp_path):
    pre = po.train_policy_on(_cfg(tmp_path, "pre", max_steps=3), DATA)
    cfg = _cfg(tmp_path, "live", max_steps=3)
    cfg.engine.reference = "live"
    live = po.train_policy_on(cfg, DATA)
    assert _losses(pre) == pytest.approx(_losses(live), abs=1e-5)


def test_lora_reference_is_the_base_model_and_packing_matches_padding(tmp_path):
    cfg = _cfg(tmp_path, "lora", finetune="lora", max_steps=3)
    cfg.engine.reference = "live"  # adapter disabled inside the step
    cfg.engine.packing = True
    lora_live = po.train_policy_on(cfg, DATA)
    cfg = _cfg(tmp_path, "lora_pre", finetune="lora", max_steps=3)
    cfg.engine.packing = False
    lora_pre_padded = po.train_policy_on(cfg, DATA)
    assert _losses(lora_live) == pytest.approx(_losses(lora_pre_padded), abs=1e-5)
    assert not any("lora" in k for k in load_file(lora_live.final_dir / "model.safetensors"))  # merged


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    straight = po.train_policy_on(_cfg(tmp_path, "a", epochs=3), DATA)
    real, calls = po.policy_loss, {"n": 0}

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(po, "policy_loss", crash)
    with pytest.raises(KeyboardInterrupt):
        po.train_policy_on(_cfg(tmp_path, "b", epochs=3, save_every=4), DATA)
    monkeypatch.undo()
    cfg = _cfg(tmp_path, "b", epochs=3, save_every=4)
    cfg.resume = True
    resumed = po.train_policy_on(cfg, DATA)
    # 1e-5: bit-equal on a CPU; on a GPU the atomics of index_add / GEMM split-K reorder fp32 sums
    # (~1e-7 relative per step). A resume bug (lost optimizer or scheduler state, another data order)
    # moves losses by > 1e-3 here (lr 1e-3).
    assert _losses(straight) == pytest.approx(_losses(resumed), abs=1e-5)
    a, b = (
        load_file(straight.final_dir / "model.safetensors"),
        load_file(resumed.final_dir / "model.safetensors"),
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_sft_and_po_cli(tmp_path):
    from genpref.cli import main

    write_jsonl(DATA, tmp_path / "pairs.jsonl")
    sft_rows = [
        {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi there!"}]}
    ] * 8
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft_rows))
    common = [
        "--policy.model",
        tiny_llama(),
        "--policy.max_length",
        "96",
        "--train.progress",
        "false",
        "--engine.cache_dir",
        str(tmp_path / "cache"),
    ]
    assert (
        main(
            [
                "sft",
                "--data.train",
                str(tmp_path / "sft.jsonl"),
                "--train.epochs",
                "40",
                "--optim.lr",
                "1e-2",
                "--output_dir",
                str(tmp_path / "sft"),
                *common,
            ]
        )
        == 0
    )
    sft = [r["loss"] for r in read_metrics(tmp_path / "sft" / "metrics.jsonl") if "loss" in r]
    assert sft[-1] < 0.5 * sft[0]  # learns the one reply
    assert (
        main(
            [
                "po",
                "train",
                "--data.train",
                str(tmp_path / "pairs.jsonl"),
                "--loss.name",
                "ipo",
                "--policy.model",
                str(tmp_path / "sft" / "final"),
                "--output_dir",
                str(tmp_path / "po"),
                *common[2:],
            ]
        )
        == 0
    )
    assert (tmp_path / "po" / "final" / "config.json").exists()


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    big = po.train_policy_on(_cfg(tmp_path, "big", batch_size=8, max_steps=2), DATA)
    acc = po.train_policy_on(_cfg(tmp_path, "acc", batch_size=4, grad_accum=2, max_steps=2), DATA)
    assert _losses(big) == pytest.approx(_losses(acc), abs=1e-5)
    a, b = load_file(big.final_dir / "model.safetensors"), load_file(acc.final_dir / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_reference_batches_by_length_but_returns_input_order():
    from genpref.data.encode import Encoded
    from genpref.policy.model import load_policy
    from genpref.policy.reference import compute_logps

    lm, tok = load_policy(tiny_llama())
    g = torch.Generator().manual_seed(0)
    lengths = [30, 7, 19, 12, 25, 9, 16]  # unsorted on purpose
    seqs = [Encoded(torch.randint(5, 200, (n,), generator=g).tolist(), 3, False) for n in lengths]
    batched, counts = compute_logps(
        lm, seqs, batch_size=3, packing=False, pad_id=tok.pad_token_id, progress=False
    )
    single = [
        compute_logps(lm, [s], batch_size=1, packing=False, pad_id=tok.pad_token_id, progress=False)
        for s in seqs
    ]
    torch.testing.assert_close(batched, torch.cat([s for s, _ in single]), rtol=1e-5, atol=1e-5)
    assert counts.tolist() == [n - 3 for n in lengths]


def test_reference_with_shared_prompts_equals_full_sequences():
    """``share_prompt``: each distinct prompt of a batch runs once; the values and their order are the
    full-sequence ones (three prompts, samples interleaved, batches that split a prompt's samples)."""
    from genpref.data.encode import Encoded
    from genpref.policy.model import load_policy
    from genpref.policy.reference import compute_logps

    lm, tok = load_policy(tiny_llama())
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(5, 200, (n,), generator=g).tolist() for n in (6, 11, 4)]
    seqs = [
        Encoded(prompts[p] + torch.randint(5, 200, (n,), generator=g).tolist(), len(prompts[p]), False)
        for p, n in [(0, 5), (1, 3), (2, 8), (0, 2), (1, 9), (2, 1), (0, 7), (1, 4)]
    ]
    kw = dict(batch_size=3, packing=False, pad_id=tok.pad_token_id, progress=False)
    plain, plain_counts = compute_logps(lm, seqs, **kw)
    shared, shared_counts = compute_logps(lm, seqs, share_prompt=True, **kw)
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-4)
    assert shared_counts.tolist() == plain_counts.tolist() == [5, 3, 8, 2, 9, 1, 7, 4]
