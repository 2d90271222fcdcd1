"""Faults long runs meet: kill -9 mid-training, NaN gradients, and writes outside the output directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import tiny_bert

import genpref.train.rm as rm
from genpref.data.synthetic import make_synthetic_preferences, write_jsonl
from genpref.errors import TrainingDiverged
from genpref.models.config import PreferenceModelConfig
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.rm_config import RMTrainConfig


def _train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "genpref",
        "rm",
        "train",
        "--model.backbone",
        tiny_bert(),
        "--model.max_length",
        "64",
        "--data.train",
        str(data),
        "--train.batch_size",
        "4",
        "--train.epochs",
        "2",
        "--train.save_every",
        "5",
        "--train.progress",
        "false",
        "--output_dir",
        str(out),
        *extra,
    ]


@pytest.mark.slow
def test_kill_9_during_training_then_resume_gives_the_uninterrupted_result(tmp_path):
    write_jsonl(make_synthetic_preferences(120, seed=6), tmp_path / "train.jsonl")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        _train_cmd(tmp_path / "train.jsonl", tmp_path / "a"), env=env, capture_output=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    proc = subprocess.Popen(
        _train_cmd(tmp_path / "train.jsonl", tmp_path / "b"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = tmp_path / "b" / "checkpoints" / "step-00000010"
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "b" / "final").exists()
    for ckpt in (tmp_path / "b" / "checkpoints").glob("step-*"):  # every visible checkpoint is complete
        assert (ckpt / "trainer_state.json").exists() and (ckpt / "model" / "model.safetensors").exists()
    resumed = subprocess.run(
        _train_cmd(tmp_path / "train.jsonl", tmp_path / "b", "--resume", "true"),
        env=env,
        capture_output=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    wa = load_file(tmp_path / "a" / "final" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "final" / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    la = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    lb = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(la) == len(lb)


def test_nan_gradient_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = rm.build_model

    def poisoned(cfg):
        model = original(cfg)
        calls = {"n": 0}

        def hook(grad):
            calls["n"] += 1
            return grad * float("nan") if calls["n"] == 5 else grad

        model.head.weight.register_hook(hook)
        return model

    monkeypatch.setattr(rm, "build_model", poisoned)
    cfg = RMTrainConfig(
        model=PreferenceModelConfig(backbone=tiny_bert(), max_length=64),
        optim=OptimConfig(lr=1e-3),
        train=TrainConfig(batch_size=4, save_every=2, progress=False),
        output_dir=str(tmp_path / "run"),
    )
    with pytest.raises(TrainingDiverged, match=r"non-finite gradient norm at step 5.*step-00000004"):
        rm.train_preference_model_on(cfg, make_synthetic_preferences(40, seed=1))
    assert (tmp_path / "run" / "checkpoints" / "step-00000004" / "model" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "final").exists()


def test_a_run_writes_only_inside_its_output_dir_and_the_cache(tmp_path):
    work, home, cache = tmp_path / "cwd", tmp_path / "home", tmp_path / "cache"
    for d in (work, home, cache):
        d.mkdir()
    write_jsonl(make_synthetic_preferences(16, seed=2), tmp_path / "train.jsonl")
    env = dict(
        os.environ,
        HOME=str(home),
        GENPREF_CACHE=str(cache),
        OMP_NUM_THREADS="1",
        HF_HOME=str(cache / "hf"),
        MPLCONFIGDIR=str(cache / "mpl"),
        CUDA_CACHE_PATH=str(cache / "nv"),  # on a GPU, CUDA's own kernel cache (default ~/.nv)
    )
    cmd = _train_cmd(tmp_path / "train.jsonl", work / "run", "--train.epochs", "1")
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [p.name for p in work.iterdir()] == ["run"]
    assert list(home.rglob("*")) == []
