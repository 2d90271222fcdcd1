"""benchmarks/selfplay_winrate.py at a tiny size: both judges are trained on disjoint data, GPO and
SPPO run their iterations on the real SmolLM2 policy, and the headline carries every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genpref.data.paths import shared_data_dir

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "selfplay_winrate.py"


@pytest.mark.slow
@pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data not found")
def test_selfplay_winrate_benchmark_at_a_tiny_size(tmp_path):
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(SCRIPT), "--output", str(out), "--work_dir", str(tmp_path / "work"),
           "--prompts", "2", "--eval_prompts", "3", "--k", "2", "--iterations", "2",
           "--max_new_tokens", "4", "--judge_steps", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    head = result["headline"]
    for key in ("iteration_minutes", "reference_forwards", "gpo_winrate", "gpo_winrate_ci_low", "sppo_winrate",
                "sppo_winrate_ci_low", "gpo_winrate_second_judge", "gpo_winrate_second_judge_ci_low"):  # fmt: skip
        assert isinstance(head[key], int | float), key
    assert head["reference_forwards"] == 0  # π_t's log-probs come from generation
    # the fit pass is counted apart, one sequence per trained sample per iteration
    n = 2 * 2 * 2 * 2  # algorithms × iterations × prompts × K (one epoch)
    assert result["policy_sequences"]["diagnostic"] == n
    assert result["policy_sequences"]["with_grad"] == n
    assert result["judges"]["second_judge"]["train_pairs"] > 0
    for algorithm in ("gpo", "sppo"):
        rows = result["runs"][algorithm]["iterations"]
        assert [r["iteration"] for r in rows] == [1, 2]
        assert all("fit" in r and r["eta"] > 0 and len(r["judges"]) == 1 for r in rows)
    # SPPO started from GPO's first samples and π_0 evaluation; its second iteration sampled its own
    work = tmp_path / "work"
    assert (work / "gpo" / "iter-0" / "generations.jsonl").read_text() == (
        work / "sppo" / "iter-0" / "generations.jsonl"
    ).read_text()
    assert (work / "sppo" / "iter-1" / "generations.jsonl").exists()
