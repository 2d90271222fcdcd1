"""The bad-input corpus (tests/data/bad/): every case gives a specific, actionable error and a non-zero
exit, with the file and line where there is one, and never a bare traceback."""

from __future__ import annotations

import json
import os
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
    "trailing_comma.json": ("trailing_comma.json:4", "remove the trailing comma"),
    "null_prompt.jsonl": ("null_prompt.jsonl:1 field 'prompt'", "is null"),
    "hh_crlf.csv": ("hh_crlf.csv:2 field 'chosen'", "Windows line endings"),
    "tool_message.jsonl": ("tool_message.jsonl:1 field 'prompt[1]'", "'tool' messages"),
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
    assert main(["rm", "eval", "--model_path", str(tmp_path / "future"), "--data", data]) == 2
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
    assert main(["rm", "eval", "--model_path", str(tmp_path / "ck"), "--data", data]) == 2
    err = capsys.readouterr().err
    assert "do not match the config" in err and "Traceback" not in err


# ---------------------------------------------------------------- files the readers misjudged


def test_gzip_is_recognised_by_content_and_a_corrupt_body_is_named(tmp_path):
    import gzip

    from genpref.data.load import load_preferences
    from genpref.errors import DataError

    row = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n"
    upper = tmp_path / "PREFS.JSONL.GZ"
    upper.write_bytes(gzip.compress((row * 3).encode()))
    assert len(load_preferences(upper).examples) == 3  # not read as text (the iconv advice)
    body = gzip.compress((row * 2000).encode())
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(body[: len(body) // 2])
    with pytest.raises(
        DataError, match=r"(?s)corrupt\.jsonl\.gz:\d+: corrupt gzip data.*fetch the file again"
    ):
        load_preferences(corrupt)


def test_json_lines_in_a_json_file_get_the_jsonl_hint_and_a_trailing_comma_does_not(tmp_path):
    from genpref.data.load import load_preferences
    from genpref.errors import DataError

    row = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})
    (tmp_path / "lines.json").write_text(row + "\n" + row + "\n")
    with pytest.raises(DataError, match="rename the file to .jsonl"):
        load_preferences(tmp_path / "lines.json")
    with pytest.raises(DataError, match="remove the trailing comma") as exc:
        load_preferences(BAD / "trailing_comma.json")
    assert ".jsonl" not in str(exc.value)


def test_every_row_rejected_in_rm_eval_and_an_empty_cycles_file_fail_clearly(tmp_path, capsys):
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    PreferenceModel.from_config(PreferenceModelConfig(type="bt", backbone=tiny_bert())).save_pretrained(
        tmp_path / "ck"
    )
    bad_rows = [(BAD / n).read_text().splitlines()[1] for n in ("wrong_types.jsonl", "empty_text.jsonl")]
    (tmp_path / "all_bad.jsonl").write_text("\n".join(bad_rows) + "\n")
    code = main(
        ["rm", "eval", "--model_path", str(tmp_path / "ck"), "--data", str(tmp_path / "all_bad.jsonl"),
         "--on_error", "skip", "--rejects", str(tmp_path / "rejects.jsonl")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "nothing to evaluate: all 2 rows were rejected" in err and "Traceback" not in err
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["data", "cycles", str(tmp_path / "empty.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "empty.jsonl: no comparisons" in err and "1.0" not in err


# ---------------------------------------------------------------- broken checkpoints


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    folder = tmp_path_factory.mktemp("ck") / "final"
    PreferenceModel.from_config(PreferenceModelConfig(type="bt", backbone=tiny_bert())).save_pretrained(
        folder
    )
    return folder


def _broken_copy(saved, tmp_path, how: str) -> Path:
    import shutil

    folder = tmp_path / how
    shutil.copytree(saved, folder)
    weights = folder / "model.safetensors"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "pickle_only":
        weights.rename(folder / "pytorch_model.bin")
    elif how == "broken_json":
        (folder / "genpref.json").write_text('{"format_version": 1, "model": {')
    return folder


@pytest.mark.parametrize(
    "how,what",
    [
        ("truncated", "model.safetensors: unreadable weights"),
        ("pickle_only", "only pickle weights (pytorch_model.bin)"),
        ("broken_json", "genpref.json: not valid JSON"),
    ],
)
def test_broken_checkpoint_names_the_file_and_the_fix(saved_checkpoint, how, what, tmp_path, capsys):
    folder = _broken_copy(saved_checkpoint, tmp_path, how)
    data = str(BAD.parent / "prefs_mixed.jsonl")
    assert main(["rm", "eval", "--model_path", str(folder), "--data", data]) == 2
    err = capsys.readouterr().err
    assert what in err and "fix:" in err and "Traceback" not in err


# ---------------------------------------------------------------- outputs checked before the work


def test_outputs_that_cannot_be_written_fail_before_any_work(tmp_path, capsys):
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    data = str(BAD.parent / "prefs_mixed.jsonl")
    # --output is a folder: refused before the (missing) model is even looked at
    assert main(["rm", "score", "--model", str(tmp_path / "nope"), "--data", data,
                 "--output", str(tmp_path / "a_folder")]) == 2  # fmt: skip
    assert "output " + str(tmp_path / "a_folder") + " is a folder" in capsys.readouterr().err
    assert list((tmp_path / "a_folder").iterdir()) == []
    assert _train(["--data.train", data, "--output_dir", str(tmp_path / "a_file")], tmp_path) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["data", "cycles", data, "--output", str(tmp_path / "a_file" / "r.json")]) == 2
    assert "cannot be created" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_dir_without_write_permission_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert (
        _train(["--data.train", str(BAD / "bad_prob.jsonl"), "--output_dir", str(locked / "run")], tmp_path)
        == 2
    )
    assert "no permission to write" in capsys.readouterr().err


# ---------------------------------------------------------------- settings checked when parsed


RANGE_CASES = [
    (["rm", "train", "--optim.lr", "0"], "optim.lr=0.0 is out of range", "> 0"),
    (["rm", "train", "--optim.warmup_ratio", "3"], "optim.warmup_ratio=3.0", "in [0.0, 1.0]"),
    (["rm", "train", "--train.batch_size", "0"], "train.batch_size=0", ">= 1"),
    (["rm", "train", "--train.max_steps", "0"], "train.max_steps=0", ">= 1 (or null)"),
    (["rm", "train", "--data.eval_fraction", "1.5"], "data.eval_fraction=1.5", "in (0, 1)"),
    (["rm", "eval", "--model_path", "m", "--data", "d", "--batch_size", "0"], "batch_size=0", ">= 1"),
    (["po", "train", "--loss.beta", "0"], "loss.beta=0.0", "> 0"),
    (["po", "train", "--loss.label_smoothing", "0.1"], "no effect with loss.name=dpo", "cdpo or robust"),
    (["po", "train", "--loss.name", "cdpo", "--loss.label_smoothing", "0.7"], "loss.label_smoothing=0.7", "[0.0, 0.5)"),
    (["selfplay", "--k", "1"], "k=1", ">= 2"),
]  # fmt: skip


@pytest.mark.parametrize(
    "argv,field,allowed", RANGE_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_out_of_range_settings_name_the_field_and_the_range(argv, field, allowed, tmp_path, capsys):
    assert main([*argv, "--output_dir", str(tmp_path / "run")] if "train" in argv else argv) == 2
    err = capsys.readouterr().err
    assert field in err and allowed in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_max_length_over_the_backbone_position_limit_is_refused_before_training(tmp_path, capsys):
    code = _train(
        ["--data.train", str(BAD.parent / "prefs_mixed.jsonl"), "--model.max_length", "1024"], tmp_path
    )
    err = capsys.readouterr().err
    assert code == 2 and "model.max_length=1024 exceeds the position limit" in err and "<= 512" in err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_gpo_refuses_a_pairpm_judge_before_any_model_loads(tmp_path, capsys):
    judge = tmp_path / "judge"
    judge.mkdir()
    (judge / "genpref.json").write_text(json.dumps({"format_version": 1, "model": {"type": "pairpm"}}))
    code = main(
        ["selfplay", "--judge", str(judge), "--algorithm", "gpo", "--output_dir", str(tmp_path / "sp")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "gpo needs a BT or GPM judge" in err and "--algorithm sppo" in err


# ---------------------------------------------------------------- argument and YAML errors


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--train.epoch", "2"], "unknown option --train.epoch (did you mean --train.epochs"),
        (["--loss", "foo"], "--loss: invalid value 'foo'; expected one of hard, soft, regression"),
        (["--train.max_steps", "x"], "--train.max_steps: invalid value 'x'; expected an integer or null"),
    ],
)
def test_argument_errors_are_one_line_with_the_valid_values(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rm", "train", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err, err
    assert len(err.strip().splitlines()) <= 2 and "usage" not in err


def test_yaml_errors_name_the_file_and_line(capsys):
    assert main(["rm", "train", "--config", str(BAD / "broken_yaml.yaml")]) == 2
    err = capsys.readouterr().err
    assert "broken_yaml.yaml:4:" in err and "invalid YAML" in err and "<unicode string>" not in err


# ---------------------------------------------------------------- valid but risky data: warnings


def test_duplicate_rows_are_kept_and_reported_with_their_lines(tmp_path, caplog):
    from genpref.data.load import load_preferences

    a, b = ({"prompt": "p", "chosen": c, "rejected": "r"} for c in ("x", "y"))
    (tmp_path / "dup.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (a, b, a, a)))
    report = load_preferences(tmp_path / "dup.jsonl")
    assert len(report.examples) == 4  # never a silent change
    assert report.duplicates == [("dup.jsonl:3", "dup.jsonl:1"), ("dup.jsonl:4", "dup.jsonl:1")]
    assert "2 rows repeat an earlier row exactly: dup.jsonl:3 (= dup.jsonl:1)" in caplog.text


def test_text_the_tokenizer_cannot_represent_is_reported_by_row(caplog):
    from transformers import AutoTokenizer

    from genpref.data.encode import encode_response, warn_unknown_tokens

    tok = AutoTokenizer.from_pretrained(tiny_bert())
    plain = encode_response(tok, "Name a colour.", "Blue.", max_length=64, is_encoder=True)
    blob = encode_response(tok, "Decode this.", "a" * 101, max_length=64, is_encoder=True)  # one [UNK]
    assert tok.unk_token_id in blob.input_ids and tok.unk_token_id not in plain.input_ids
    found = warn_unknown_tokens(tok, [("f.jsonl:1", (plain,)), ("f.jsonl:2", (blob,))], "train")
    assert found == ["f.jsonl:2"]
    assert (
        "train: 1 rows contain text the tokenizer maps to the unknown token '[UNK]' (rows f.jsonl:2)"
        in caplog.text
    )
