"""The genpref command line: config files, overrides, --help, subcommands and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tiny_models import tiny_bert

from genpref.cli import build_parser, main
from genpref.data.synthetic import make_synthetic_preferences, write_jsonl

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train a tiny GPM through the CLI from a YAML file plus dotted overrides."""
    root = tmp_path_factory.mktemp("cli")
    data = make_synthetic_preferences(40, seed=5)
    write_jsonl(data[:32], root / "train.jsonl")
    write_jsonl(data[32:], root / "eval.jsonl")
    config = {
        "model": {"type": "gpm", "backbone": tiny_bert(), "k": 2, "max_length": 64},
        "data": {"train": str(root / "train.jsonl"), "eval": str(root / "eval.jsonl")},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "output_dir": str(root / "run"),
    }
    (root / "cfg.yaml").write_text(yaml.safe_dump(config))
    code = main(
        [
            "rm",
            "train",
            "--config",
            str(root / "cfg.yaml"),
            "--model.prompt_gate",
            "true",
            "--train.seed",
            "4",
        ]
    )
    assert code == 0
    return root


def test_train_writes_checkpoint_metrics_and_config(trained):
    run = trained / "run"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["prompt_gate"] is True and saved["train"]["seed"] == 4  # overrides applied
    assert (run / "final" / "model.safetensors").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and "eval_accuracy" in rows[-1]
    assert json.loads((run / "eval_results.json").read_text())["overall"]["n"] == 8


def test_eval_and_score_commands(trained, capsys):
    model = str(trained / "run" / "final")
    out = trained / "results.json"
    assert (
        main(
            ["rm", "eval", "--model_path", model, "--data", str(trained / "eval.jsonl"), "--output", str(out)]
        )
        == 0
    )
    results = json.loads(out.read_text())
    assert results["overall"]["n"] == 8 and set(results["subsets"]) <= {
        "capitals",
        "animals",
        "arithmetic",
        "tips",
    }
    assert "accuracy" in capsys.readouterr().out
    scores = trained / "scores.jsonl"
    assert (
        main(
            ["rm", "score", "--model", model, "--data", str(trained / "eval.jsonl"), "--output", str(scores)]
        )
        == 0
    )
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == 8 and all(0 < r["prob_chosen"] < 1 for r in rows)
    ranking = trained / "rank.jsonl"
    ranking.write_text(
        json.dumps({"prompt": "Name a fruit.", "responses": ["Apple.", "A car.", "Banana, a fruit."]}) + "\n"
    )
    assert main(["rm", "score", "--model", model, "--data", str(ranking), "--output", str(scores)]) == 0
    row = json.loads(scores.read_text())
    assert (
        len(row["prob_matrix"]) == 3 and row["forwards"] == 3 + 1
    )  # 3 responses + 1 prompt-only (gated encoder)
    assert sorted(row["ranking"]) == [0, 1, 2]


def test_help_documents_every_field(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rm", "train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag, doc in [
        ("--model.k", "2x2 skew-symmetric blocks"),
        ("--train.grad_accum", "Micro-batches"),
        ("--data.on_error", "rejects file"),
        ("--optim.head_lr", "head"),
    ]:
        assert flag in text and doc in text


def test_unknown_config_key_fails_before_any_model_loads(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("model:\n  typo_field: 3\n")
    with pytest.raises(SystemExit) as exc:
        main(["rm", "train", "--config", str(tmp_path / "bad.yaml")])
    assert exc.value.code != 0
    assert "typo_field" in capsys.readouterr().err


def test_bad_data_row_gives_file_line_field_and_exit_2(tmp_path, capsys):
    rows = [
        {"prompt": "hi", "chosen": "a", "rejected": "b"},
        {"prompt": "hi", "chosen": "same", "rejected": "same"},
    ]
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(
        [
            "rm",
            "train",
            "--data.train",
            str(tmp_path / "bad.jsonl"),
            "--model.backbone",
            tiny_bert(),
            "--output_dir",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.jsonl:2" in err and "identical" in err and "Traceback" not in err


def test_unknown_command_lists_the_commands(capsys):
    assert main(["rm", "trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'rm trian'" in err and "rm train" in err
    assert main([]) == 0 and "rm score" in capsys.readouterr().out


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    code = main(["rm", "eval", "--model_path", str(tmp_path / "nope"), "--data", str(tmp_path / "d.jsonl")])
    assert code == 2 and "not a genpref preference-model checkpoint" in capsys.readouterr().err


SHIPPED = {"rm_": ("rm", "train"), "po_": ("po", "train"), "selfplay_": ("selfplay",)}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    """Each YAML under configs/ parses into its command's config (no unknown keys, valid values)."""
    from genpref.cli import _build, commands

    key = next(k for prefix, k in SHIPPED.items() if path.name.startswith(prefix))
    parser = build_parser(key)
    cls = commands()[key][0]
    cfg = _build(parser, parser.parse_args(["--config", str(path)]), cls)
    assert isinstance(cfg, cls)


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_accelerate_configs_load(path):
    """The multi-GPU configs are valid accelerate configs (they cannot run on the CPU CI machine)."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.num_processes == 8 and config.mixed_precision == "bf16"
