"""accelerate with 2 CPU processes (gloo) equals 1 process with twice the per-process batch, for
`rm train`, `po train` and the training stage of `selfplay`; metrics and checkpoints are written once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import tiny_bert, tiny_llama

from genpref.data.synthetic import make_synthetic_preferences, write_jsonl


def _run(args: list[str], processes: int) -> subprocess.CompletedProcess:
    if processes == 1:
        cmd = [sys.executable, "-m", "genpref", *args]
    else:  # on a CPU-only machine `--cpu` would start ONE process; MULTI_CPU needs --multi_gpu + ACCELERATE_USE_CPU
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "genpref",
            *args,
        ]
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same_weights(a: Path, b: Path, atol: float = 1e-6) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=atol) for k in wa)


@pytest.mark.slow
def test_rm_train_two_processes_equal_one(tmp_path):
    write_jsonl(make_synthetic_preferences(32, seed=2), tmp_path / "train.jsonl")

    def train(name, batch, processes):
        args = [
            "rm",
            "train",
            "--model.backbone",
            tiny_bert(),
            "--model.type",
            "gpm",
            "--model.k",
            "2",
            "--model.prompt_gate",
            "true",
            "--model.max_length",
            "64",
            "--data.train",
            str(tmp_path / "train.jsonl"),
            "--train.batch_size",
            str(batch),
            "--train.log_every",
            "1",
            "--train.progress",
            "false",
            "--train.save_every",
            "2",
            "--output_dir",
            str(tmp_path / name),
        ]
        assert _run(args, processes).stdout.count("final model:") == 1  # only the main process reports
        return _metrics(tmp_path / name / "metrics.jsonl")

    one, two = train("one", 8, 1), train("two", 4, 2)
    assert [r["step"] for r in two] == [1, 2, 3, 4]  # written once, not once per process
    for a, b in zip(one, two):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5) and a["accuracy"] == b["accuracy"]
    assert _same_weights(tmp_path / "one" / "final", tmp_path / "two" / "final")
    assert [p.name for p in (tmp_path / "two" / "checkpoints").iterdir()] == ["step-00000002"]


@pytest.mark.slow
def test_po_train_two_processes_equal_one(tmp_path):
    write_jsonl(make_synthetic_preferences(16, seed=3), tmp_path / "pairs.jsonl")

    def train(name, batch, processes):
        args = [
            "po",
            "train",
            "--policy.model",
            tiny_llama(),
            "--policy.max_length",
            "96",
            "--loss.name",
            "dpo",
            "--data.train",
            str(tmp_path / "pairs.jsonl"),
            "--train.batch_size",
            str(batch),
            "--train.log_every",
            "1",
            "--train.progress",
            "false",
            "--optim.lr",
            "1e-3",
            "--engine.cache_dir",
            str(tmp_path / "cache"),
            "--output_dir",
            str(tmp_path / name),
        ]
        _run(args, processes)
        return [r["loss"] for r in _metrics(tmp_path / name / "metrics.jsonl") if "loss" in r]

    one, two = train("one", 4, 1), train("two", 2, 2)
    assert len(one) == len(two) == 4 and one == pytest.approx(two, abs=1e-5)
    assert _same_weights(tmp_path / "one" / "final", tmp_path / "two" / "final", atol=1e-5)


@pytest.mark.slow
def test_selfplay_two_processes_equal_one(tmp_path):
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    torch.manual_seed(0)
    judge = tmp_path / "judge"
    PreferenceModel.from_config(PreferenceModelConfig(type="gpm", k=2, backbone=tiny_bert())).save_pretrained(
        judge
    )

    def run(name, batch, processes):
        args = [
            "selfplay",
            "--judge",
            str(judge),
            "--policy.model",
            tiny_llama(),
            "--prompts.limit",
            "4",
            "--prompts.eval_limit",
            "4",
            "--k",
            "2",
            "--sampling.max_new_tokens",
            "8",
            "--eval.max_new_tokens",
            "8",
            "--train.batch_size",
            str(batch),
            "--train.progress",
            "false",
            "--optim.lr",
            "1e-3",
            "--optim.warmup_ratio",
            "0",
            "--output_dir",
            str(tmp_path / name),
        ]
        _run(args, processes)
        return _metrics(tmp_path / name / "results.jsonl")

    one, two = run("one", 8, 1), run("two", 4, 2)
    assert not _same_weights(
        Path(tiny_llama()), tmp_path / "one" / "iter-0" / "train" / "final"
    )  # it trained
    assert one[0]["vs_policy0"]["winrate"] == pytest.approx(two[0]["vs_policy0"]["winrate"], abs=1e-5)
    assert _same_weights(
        tmp_path / "one" / "iter-0" / "train" / "final",
        tmp_path / "two" / "iter-0" / "train" / "final",
        atol=1e-5,
    )
