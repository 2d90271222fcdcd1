"""``genpref data cyclic`` and ``genpref data cycles`` run end to end on small files."""

from __future__ import annotations

import json
from pathlib import Path

from genpref.cli import main
from genpref.cyclic.builder import CRITERIA
from genpref.data.load import load_preferences

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "ultrafeedback_aspects_fixture.jsonl"


def test_data_cyclic_writes_datasets(tmp_path, capsys):
    args = ["--input", str(FIXTURE), "--output_dir", str(tmp_path), "--max_cycles_per_prompt", "null"]
    assert main(["data", "cyclic", *args, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "read 7 prompts" in out and "no_helpfulness: 4 prompts with a cycle, 5 cycles" in out
    for criterion in CRITERIA:
        examples = load_preferences(tmp_path / f"no_{criterion}.jsonl").examples
        assert examples and {e.subset for e in examples} == set(CRITERIA) - {criterion}


def test_data_cycles_reports_and_writes_json(tmp_path, capsys):
    output = tmp_path / "cycles.json"
    assert main(["data", "cycles", "--data", str(FIXTURE), "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["three_cycles"] == 3 and report["bt_ceiling_exact"] is True
    assert "best accuracy of any scalar (BT) model" in capsys.readouterr().out
    # ranking rows with scores: "7" and "5" (tied at 3) both beat "3"; a 2-pair chain → ceiling 1.
    assert main(["data", "cycles", "--data", str(DATA / "rankings.jsonl"), "--output", str(output)]) == 0
    assert json.loads(output.read_text())["bt_ceiling"] == 1.0
    # pairwise rows: a 3-cycle
    rows = [{"prompt": "p", "chosen": a, "rejected": b} for a, b in (("x", "y"), ("y", "z"), ("z", "x"))]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["data", "cycles", "--data", str(pairs), "--output", str(output)]) == 0
    assert json.loads(output.read_text())["bt_ceiling"] == 2 / 3


def test_data_cycles_bad_file_is_a_clean_error(capsys):
    assert main(["data", "cycles", "--data", "no/such/file.jsonl"]) == 2
    assert "file not found" in capsys.readouterr().err
