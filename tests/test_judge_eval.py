"""genpref rm eval / rm compare on pairs, ranking rows and RewardBench-2 rows, with tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import tiny_bert

from genpref.cli import main
from genpref.data.rankings import RankingPairConfig, pairs_from_rankings
from genpref.eval.judge_eval import detect_layout, judge_pairs, judge_rankings, load_eval_rows
from genpref.models.config import PreferenceModelConfig
from genpref.models.preference_model import PreferenceModel

RANKINGS = [
    {
        "prompt": "Name a colour.",
        "responses": ["Blue.", "No.", "Red, a warm one.", "?", "Green"],
        "scores": [9, 1, 7, 2, 4],
    },
    {
        "prompt": "Add 2 and 2.",
        "responses": ["4", "five", "It is 4.", "22", "3"],
        "scores": [10, 2, 10, 1, 3],
    },
]
PAIRS = [
    {"prompt": "Hi", "chosen": "Hello, how can I help?", "rejected": "Go.", "subset": "chat"},
    {"prompt": "2+2?", "chosen": "4", "rejected": "It is five, of course.", "subset": "math"},
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lille.", "subset": "chat"},
]
RB2 = [
    {
        "prompt": "Say yes.",
        "chosen": ["Yes."],
        "rejected": ["No.", "Maybe.", "Never, ever."],
        "subset": "Focus",
    },
    {"prompt": "Say no.", "chosen": ["No."], "rejected": ["Yes.", "Sure!", "OK"], "subset": "Safety"},
]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def judges(tmp_path_factory):
    root = tmp_path_factory.mktemp("judges")
    folders = {}
    for name, seed, kind in (("bt", 0, "bt"), ("gpm", 1, "gpm")):
        torch.manual_seed(seed)
        model = PreferenceModel.from_config(
            PreferenceModelConfig(type=kind, backbone=tiny_bert(), max_length=64)
        )
        torch.nn.init.normal_(model.head.weight, std=1.0)  # untrained but decisive
        model.save_pretrained(root / name)
        folders[name] = str(root / name)
    return root, folders


def test_layout_detection(tmp_path):
    assert detect_layout(write(tmp_path / "r.jsonl", RANKINGS)) == "rankings"
    assert detect_layout(write(tmp_path / "p.jsonl", PAIRS)) == "pairs"
    assert detect_layout(write(tmp_path / "b.jsonl", RB2)) == "best_of_n"
    conv = [{"prompt": "q", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}]
    assert detect_layout(write(tmp_path / "c.jsonl", conv)) == "pairs"  # TRL conversational, not RB2


def test_ranking_pairs_read_off_the_matrix_equal_pairwise_scoring(judges, tmp_path):
    """The pairs judge_rankings reads off one rank() call equal scoring each derived pair alone."""
    _, folders = judges
    model = PreferenceModel.from_pretrained(folders["gpm"])
    rankings = load_eval_rows(write(tmp_path / "r.jsonl", RANKINGS)).rows
    cfg = RankingPairConfig(min_score_gap=2)
    from_rank = judge_rankings(model, rankings, cfg, progress=False)
    alone = judge_pairs(model, pairs_from_rankings(rankings, cfg))
    np.testing.assert_allclose(from_rank["prob_chosen"], alone["prob_chosen"], atol=1e-5)
    assert from_rank["correct"] == alone["correct"]
    assert from_rank["length_baseline"] == alone["length_baseline"]
    # best-of-4: both prompts have a top answer and >= 3 answers at least 1 below it
    assert from_rank["best_of_n"]["n"] == 2 and from_rank["best_of_n"]["chance"] == 0.25
    assert from_rank["ranking"]["n"] == 2 and -1 <= from_rank["ranking"]["kendall_tau"] <= 1


def test_rm_eval_pairs_reports_baseline_and_length_table(judges, tmp_path, capsys):
    _, folders = judges
    out = tmp_path / "pairs.json"
    assert (
        main(
            [
                "rm",
                "eval",
                "--model_path",
                folders["bt"],
                "--data",
                write(tmp_path / "p.jsonl", PAIRS),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads(out.read_text())
    # longer wins: row 1 right, row 2 wrong (chosen "4" is shorter), row 3 "Paris." and "Lille." have equal length: wrong
    assert results["length_baseline"]["accuracy"] == pytest.approx(1 / 3)
    assert results["subsets"]["chat"]["length_baseline"]["accuracy"] == 0.5
    assert [
        results["length_bias"][k]["n"] for k in ("preferred_longer", "preferred_shorter", "same_length")
    ] == [1, 1, 1]
    low, high = results["overall"]["ci95"]
    assert low <= results["overall"]["accuracy"] <= high
    text = capsys.readouterr().out
    assert "longer wins" in text and "length bias" in text


def test_rm_eval_rankings_and_rewardbench2_rows(judges, tmp_path, capsys):
    _, folders = judges
    out = tmp_path / "rank.json"
    data = write(tmp_path / "r.jsonl", RANKINGS)
    assert main(["rm", "eval", "--model_path", folders["gpm"], "--data", data, "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert (
        results["layout"] == "rankings" and results["overall"]["n"] == 10 + 9
    )  # every pair but the tie (10, 10)
    assert "Kendall tau-b" in capsys.readouterr().out
    out2 = tmp_path / "rb2.json"
    assert (
        main(
            [
                "rm",
                "eval",
                "--model_path",
                folders["bt"],
                "--data",
                write(tmp_path / "b.jsonl", RB2),
                "--output",
                str(out2),
            ]
        )
        == 0
    )
    bon = json.loads(out2.read_text())["best_of_n"]
    assert bon["n"] == 2 and bon["chance"] == 0.25 and set(bon["subsets"]) == {"Focus", "Safety"}
    # longest wins: "Yes." loses to "Never, ever."; "No." loses to "Sure!" → 0 of 2
    assert bon["length_baseline"]["accuracy"] == 0.0


def test_rm_compare_positional_checkpoints(judges, tmp_path, capsys):
    _, folders = judges
    out = tmp_path / "cmp.json"
    data = write(tmp_path / "r.jsonl", RANKINGS)
    assert (
        main(
            [
                "rm",
                "compare",
                folders["bt"],
                folders["gpm"],
                "--data",
                data,
                "--output",
                str(out),
                "--n_boot",
                "200",
            ]
        )
        == 0
    )
    comparison = json.loads(out.read_text())["comparison"]
    assert set(comparison) == {"pairs", "best_of_n"}
    m = comparison["pairs"]["mcnemar"]
    assert (
        m["n"] == 19 and m["only_a_correct"] + m["only_b_correct"] + m["both_correct"] + m["both_wrong"] == 19
    )
    assert "McNemar" in capsys.readouterr().out
    # a judge against itself: no discordant rows, p = 1, difference exactly 0
    same = tmp_path / "same.json"
    assert (
        main(
            [
                "rm",
                "compare",
                folders["bt"],
                folders["bt"],
                "--data",
                data,
                "--output",
                str(same),
                "--n_boot",
                "50",
            ]
        )
        == 0
    )
    pairs = json.loads(same.read_text())["comparison"]["pairs"]
    assert pairs["mcnemar"]["p_value"] == 1.0 and pairs["bootstrap"]["ci95"] == [0.0, 0.0]


def test_rm_compare_needs_two_checkpoints(judges, tmp_path, capsys):
    _, folders = judges
    with pytest.raises(SystemExit):
        main(["rm", "compare", folders["bt"], "--data", write(tmp_path / "p.jsonl", PAIRS)])
    assert "model_b" in capsys.readouterr().err


def test_ranking_without_scores_is_a_clear_error(judges, tmp_path, capsys):
    _, folders = judges
    data = write(tmp_path / "u.jsonl", [{"prompt": "q", "responses": ["a", "b"]}])
    assert main(["rm", "eval", "--model_path", folders["bt"], "--data", data]) == 2
    assert "scores" in capsys.readouterr().err
