"""benchmarks/rm_accuracy.py --reuse: a stored row is reused only when it was made with the same settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "rm_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("rm_accuracy_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reuse_checks_the_stored_settings(bench, tmp_path, capsys):
    args = bench.parse_args(["--output", "x.json", "--steps", "200", "--reuse", "--jobs", "2"])
    stored = bench.comparable_settings(args)
    assert "steps" in stored and "jobs" not in stored and "reuse" not in stored  # scheduling is not compared
    path = tmp_path / "minilm_bt.json"
    bench.check_reusable({"run_settings": stored}, args, path)  # same settings: fine
    other = bench.parse_args(["--output", "y.json", "--steps", "100", "--jobs", "1"])
    with pytest.raises(SystemExit, match=r"steps: 200 then, 100 now"):
        bench.check_reusable({"run_settings": stored}, other, path)
    bench.check_reusable({}, args, path)  # a row from before settings were stored: reused, with a warning
    assert "records no settings" in capsys.readouterr().err
