"""Renamed options (issue 16): each old spelling still works for one release, with a FutureWarning that
names the new spelling; giving both with different values is an error."""

from __future__ import annotations

import json

import pytest

from genpref.cli import _build, build_parser, main
from genpref.errors import ConfigError


def _parse(words: tuple[str, ...], argv: list[str]):
    from genpref.cli import commands

    parser = build_parser(words)
    return _build(parser, parser.parse_args(argv), commands()[words][0])


def test_loss_loss_is_loss_name_with_a_deprecation_warning():
    with pytest.warns(FutureWarning, match=r"loss\.loss is deprecated .* genpref 0\.3; use loss\.name"):
        cfg = _parse(("po", "train"), ["--loss.loss", "simpo"])
    assert cfg.loss.name == "simpo" and cfg.loss.loss is None


def test_loss_loss_in_a_yaml_file_warns_too(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("loss:\n  loss: ipo\n  beta: 0.2\n")
    with pytest.warns(FutureWarning, match="use loss.name"):
        cfg = _parse(("po", "train"), ["--config", str(path)])
    assert (cfg.loss.name, cfg.loss.beta) == ("ipo", 0.2)


def test_loss_config_python_api_accepts_the_old_keyword():
    from genpref.train.po_config import LossConfig

    with pytest.warns(FutureWarning, match="loss.loss is deprecated"):
        assert LossConfig(loss="kto").name == "kto"
    with pytest.raises(ConfigError, match="pass only loss.name"):
        LossConfig(name="ipo", loss="kto")


def test_new_spellings_do_not_warn(recwarn):
    cfg = _parse(("po", "train"), ["--loss.name", "orpo"])
    assert cfg.loss.name == "orpo"
    args = _parse(("rm", "eval"), ["--model_path", "runs/rm/final", "--data", "d.jsonl"])
    assert args.model_path == "runs/rm/final"
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_rm_eval_model_is_model_path_with_a_deprecation_warning(tmp_path, capsys):
    with pytest.warns(FutureWarning, match=r"model is deprecated .* genpref 0\.3; use model_path"):
        args = _parse(("rm", "eval"), ["--model", "runs/rm/final", "--data", "d.jsonl"])
    assert args.model_path == "runs/rm/final" and args.model is None
    # the whole command still runs with the old spelling: here up to the missing checkpoint
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.warns(FutureWarning, match="use model_path"):
        code = main(["rm", "eval", "--model", str(tmp_path / "nope"), "--data", str(data)])
    assert code == 2 and "not a genpref preference-model checkpoint" in capsys.readouterr().err


def test_rm_eval_without_a_checkpoint_names_the_option(capsys):
    assert main(["rm", "eval", "--data", "d.jsonl"]) == 2
    assert "--model_path" in capsys.readouterr().err
