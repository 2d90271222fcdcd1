"""`genpref demo` (the README's main command) end to end at toy size: the rm part trains the GPM judge
on the real data path, the self-play part runs one GPO iteration of the real SmolLM2 policy with it."""

from __future__ import annotations

import json

from genpref.cli import main


def test_demo_rm_and_selfplay_parts_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--parts",
            "[rm, selfplay]",
            "--max_train",
            "16",
            "--max_eval",
            "8",
            "--max_length",
            "64",
            "--selfplay_prompts",
            "2",
            "--k",
            "2",
            "--max_new_tokens",
            "6",
            "--eval_prompts",
            "3",
            "--output_dir",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "win-rate vs π_0" in printed and "GPM (k=2)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [r["model"] for r in summary["rm"]["rows"]] == ["BT", "GPM (k=2)"]
    # the length baseline beside each accuracy, computed here by hand on the same 8 evaluation rows
    from genpref.data.load import load_preferences
    from genpref.data.paths import shared_data_dir

    if shared_data_dir() is not None:
        rows = load_preferences(
            shared_data_dir() / "ultrafeedback_binarized_eval200.jsonl.gz", on_error="skip", limit=8
        ).examples
        by_hand = sum(len(r.chosen) > len(r.rejected) for r in rows) / len(rows)
        assert all(r["length_baseline"] == by_hand for r in summary["rm"]["rows"])
    assert "longer wins" in printed
    row = summary["selfplay"][0]["vs_policy0"]
    assert row["n"] == 3 and 0.0 <= row["ci_low"] <= row["winrate"] <= row["ci_high"] <= 1.0
    assert set(summary["timings"]) == {"rm_minutes", "selfplay_minutes"}
    generations = (out / "selfplay" / "iter-0" / "generations.jsonl").read_text().splitlines()
    assert [len(json.loads(line)["samples"]) for line in generations] == [2, 2]
    assert (out / "selfplay" / "selfplay.png").stat().st_size > 0
