"""accelerate with 2 CPU processes (gloo) equals 1 process with twice the per-process batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import tiny_bert

from genpref.data.synthetic import make_synthetic_preferences, write_jsonl


def _train(tmp_path, name: str, batch: int, processes: int) -> tuple[list[dict], dict]:
    out = tmp_path / name
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
        str(out),
    ]
    if processes == 1:
        cmd = [sys.executable, "-m", "genpref", *args]
    else:
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
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("final model:") == 1  # only the main process reports
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return rows, load_file(out / "final" / "model.safetensors")


@pytest.mark.slow
def test_two_processes_equal_one_process_with_double_batch(tmp_path):
    write_jsonl(make_synthetic_preferences(32, seed=2), tmp_path / "train.jsonl")
    one_rows, one_w = _train(tmp_path, "one", batch=8, processes=1)
    two_rows, two_w = _train(tmp_path, "two", batch=4, processes=2)
    assert [r["step"] for r in two_rows] == [1, 2, 3, 4]  # metrics written once, not once per process
    for a, b in zip(one_rows, two_rows):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["accuracy"] == b["accuracy"]
    assert all(torch.allclose(one_w[k], two_w[k], atol=1e-6) for k in one_w)
    assert [p.name for p in (tmp_path / "two" / "checkpoints").iterdir()] == [
        "step-00000002"
    ]  # save_every=2 of 4 steps (4 is final)
