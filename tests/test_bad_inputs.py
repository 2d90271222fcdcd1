"""The bad-input corpus (tests/data/bad/): every case gives a specific, actionable error and a non-zero
exit, with the file and line where there is one, and never a bare traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import tiny_bert

from genpref.cli import main

BAD = Path(__file__).parent / "data" / "bad"

DATA_CASES = {
    "malformed_json.jsonl": ("malformed_json.jsonl:2", "invalid JSON"),
    "wrong_types.jsonl": ("wrong_types.jsonl:2 field 'chosen'", "expected a string"),
    "empty_text.jsonl": ("empty_text.jsonl:2 field 'chosen'", "empty"),
    "identical_pair.jsonl": ("identical_pair.jsonl:2", "identical"),
    "mismatched_prompts.jsonl": ("mismatched_prompts.jsonl:1", "prompts do not match"),
    "unknown_role.jsonl": ("unknown_role.jsonl:1", "unknown role 'bot'"),
    "missing_field.jsonl": ("missing_field.jsonl:1 field 'rejected'", "missing"),
    "bad_prob.jsonl": ("bad_prob.jsonl:1 field 'prob'", "[0, 1]"),
    "gigantic_row.jsonl": ("gigantic_row.jsonl:2 field 'chosen'", "over genpref's limit"),
    "latin1.jsonl": ("latin1.jsonl:1", "UTF-8"),
}


def _train(args: list[str], tmp_path) -> int:
    return main(
        ["rm", "train", "--model.backbone", tiny_bert(), "--output_dir", str(tmp_path / "run"), *args]
    )


@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_bad_data_file(name, tmp_path, capsys):
    where, what = DATA_CASES[name]
    assert _train(["--data.train", str(BAD / name)], tmp_path) == 2
    err = capsys.readouterr().err
    assert where in err and what in err, err
    assert "fix:" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "final").exists()


def test_skip_mode_keeps_going_and_writes_rejects(tmp_path, caplog):
    caplog.set_level("INFO")
    rows = (BAD / "wrong_types.jsonl").read_text() + (BAD / "identical_pair.jsonl").read_text()
    (tmp_path / "mixed.jsonl").write_text(rows)
    code = _train(
        [
            "--data.train",
            str(tmp_path / "mixed.jsonl"),
            "--data.on_error",
            "skip",
            "--train.max_steps",
            "1",
            "--train.batch_size",
            "1",
            "--train.progress",
            "false",
        ],
        tmp_path,
    )
    assert code == 0
    rejects = [json.loads(x) for x in (tmp_path / "run" / "rejects.jsonl").read_text().splitlines()]
    assert [r["origin"] for r in rejects] == ["mixed.jsonl:2", "mixed.jsonl:4"]
    assert any("2 skipped" in r.getMessage() for r in caplog.records)


def test_missing_file(tmp_path, capsys):
    assert _train(["--data.train", str(tmp_path / "nope.jsonl")], tmp_path) == 2
    err = capsys.readouterr().err
    assert "nope.jsonl" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "name,what", [("unknown_config_key.yaml", "blocks"), ("bad_config_value.yaml", "gpn")]
)
def test_bad_config_fails_before_any_model_loads(name, what, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rm", "train", "--config", str(BAD / name), "--output_dir", str(tmp_path / "run")])
    assert exc.value.code != 0
    assert what in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_incompatible_checkpoints(tmp_path, capsys):
    data = str(BAD.parent / "prefs_mixed.jsonl")
    (tmp_path / "future").mkdir()
    (tmp_path / "future" / "genpref.json").write_text(json.dumps({"format_version": 99, "model": {}}))
    assert main(["rm", "eval", "--model", str(tmp_path / "future"), "--data", data]) == 2
    assert "format_version 99" in capsys.readouterr().err
    # a real checkpoint whose weights do not match its config
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    PreferenceModel.from_config(PreferenceModelConfig(type="gpm", k=2, backbone=tiny_bert())).save_pretrained(
        tmp_path / "ck"
    )
    meta = json.loads((tmp_path / "ck" / "genpref.json").read_text())
    meta["model"]["k"] = 3
    (tmp_path / "ck" / "genpref.json").write_text(json.dumps(meta))
    assert main(["rm", "eval", "--model", str(tmp_path / "ck"), "--data", data]) == 2
    err = capsys.readouterr().err
    assert "do not match the config" in err and "Traceback" not in err
