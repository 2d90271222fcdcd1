"""benchmarks/gpu_throughput.py at a tiny size on the CPU (its CPU test): every side trains the same
random Llama on the same pairs, the table and headline are written, and the first-step summed
log-probs of genpref and TRL agree within 1e-3 relative on the pairs neither side truncates."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from genpref.data.paths import shared_data_dir

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_throughput.py"


@pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data (UltraFeedback) not found")
@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="TRL (dev extra) not installed")
def test_gpu_throughput_runs_on_cpu_at_a_tiny_size(tmp_path):
    out = tmp_path / "cpu.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--size", "tiny", "--n_pairs", "12",
           "--max_length", "128", "--batch_size", "4", "--warmup_steps", "1", "--profile",
           "--work_dir", str(tmp_path / "work"), "--output", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["failed"] == {}
    assert result["machine"]["cpu_capability"] and isinstance(result["machine"]["cpu_fast_bf16"], bool)
    rows = {r["setting"]: r for r in result["rows"]}
    assert set(rows) == {"matmul", "genpref", "trl", "trl_precompute"}
    assert rows["genpref"]["pairs"] == rows["trl"]["pairs"] == rows["trl_precompute"]["pairs"] == 12
    assert rows["genpref"]["steps"] == rows["trl"]["steps"] == 3
    assert rows["genpref"]["n_params"] == rows["trl"]["n_params"]  # the same model
    assert rows["genpref"]["profile"] and rows["genpref"]["steady_pairs"] == 8  # steps 2 and 3
    head = result["headline"]
    for key in (
        "steady_ratio_vs_trl_precompute",
        "end_to_end_ratio_vs_trl",
        "peak_memory_ratio_vs_trl",
        "mfu",
    ):
        assert head[key] > 0
    assert head["device"] == result["machine"]["cpu_model"]
    assert head["logps_pairs_compared"] >= 2  # pairs neither side truncates at 128 tokens (3 of 12)
    assert head["logps_max_rel_diff_vs_trl"] <= 1e-3 and head["logps_match"]
