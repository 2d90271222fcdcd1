"""Tests for genpref.data.load and genpref.data.paths: formats, validation, skipping, real files."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from genpref.data.load import (
    LoadReport,
    load_preferences,
    load_rankings,
)
from genpref.data.paths import ENV_VAR, shared_data_dir
from genpref.data.rankings import pairs_from_rankings
from genpref.data.readers import read_records
from genpref.data.types import PreferenceExample, RankingExample
from genpref.errors import DataError

TEST_DATA = Path(__file__).parent / "data"
HH_FILE = "hh_rlhf_harmless_base_test.jsonl.gz"
UF_FILE = "ultrafeedback_binarized_train1000.jsonl.gz"


def load_one(row: dict) -> PreferenceExample:
    (example,) = load_preferences([row]).examples
    return example


def load_error(row: dict) -> DataError:
    with pytest.raises(DataError) as info:
        load_preferences([row])
    return info.value


# ---------------------------------------------------------------- row formats


def test_explicit_standard_with_optional_fields():
    row = {"prompt": "Q?", "chosen": "A.", "rejected": "B.", "prob": 0.75, "margin": 2, "subset": "s", "x": 1}
    assert load_one(row) == PreferenceExample(
        "Q?", "A.", "B.", label=0.75, margin=2.0, subset="s", origin="<list>:1"
    )


def test_defaults_label_one_and_no_margin():
    example = load_one({"prompt": "Q?", "chosen": "A.", "rejected": "B.", "prob": None})
    assert (example.label, example.margin, example.subset) == (1.0, None, None)


def test_explicit_conversational_trl_style_responses_become_text():
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    row = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "Hello."}],
        "rejected": "Go away.",
    }
    example = load_one(row)
    assert example.prompt == prompt and example.conversational
    assert (example.chosen, example.rejected) == ("Hello.", "Go away.")


def test_whole_conversation_responses_with_string_prompt():
    """HuggingFaceH4-style rows: a string prompt and chosen/rejected holding the whole conversation."""
    conv = [{"role": "user", "content": "Hi"}]
    row = {
        "prompt": "Hi",
        "chosen": [*conv, {"role": "assistant", "content": "Hello."}],
        "rejected": [*conv, {"role": "assistant", "content": "No."}],
    }
    example = load_one(row)
    assert (example.prompt, example.chosen, example.rejected) == (conv, "Hello.", "No.")


def test_implicit_hh_splits_at_last_assistant_turn_and_keeps_leading_space():
    prefix = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Joke?\n\nAssistant:"
    example = load_one({"chosen": prefix + " Knock knock.", "rejected": prefix + "  No."})
    assert example.prompt == prefix
    assert (example.chosen, example.rejected) == (" Knock knock.", "  No.")
    assert example.prompt + example.chosen == prefix + " Knock knock."  # lossless split


def test_implicit_conversational_prompt_is_messages_before_last_reply():
    turn = [
        {"role": "user", "content": "A"},
        {"role": "assistant", "content": "B"},
        {"role": "user", "content": "C"},
    ]
    row = {
        "chosen": [*turn, {"role": "assistant", "content": "good"}],
        "rejected": [*turn, {"role": "assistant", "content": "bad"}],
    }
    example = load_one(row)
    assert (example.prompt, example.chosen, example.rejected) == (turn, "good", "bad")


# ---------------------------------------------------------------- validation errors

USER = {"role": "user", "content": "q"}
BAD_ROWS = [
    ({"prompt": "q", "chosen": "a"}, "rejected", "missing required field"),
    ({"prompt": "q", "chosen": 3, "rejected": "b"}, "chosen", "expected a string, got int"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "prob": True}, "prob", "got bool"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "prob": "0.5"}, "prob", "got str"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "prob": 1.5}, "prob", "[0, 1]"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "margin": math.nan}, "margin", "finite"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "margin": math.inf}, "margin", "finite"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "subset": 3}, "subset", "expected a string"),
    ({"prompt": "q", "chosen": " \n", "rejected": "b"}, "chosen", "empty"),
    ({"prompt": "", "chosen": "a", "rejected": "b"}, "prompt", "empty"),
    ({"prompt": "q", "chosen": "same", "rejected": "same "}, "rejected", "identical"),
    ({"prompt": ["q"], "chosen": "a", "rejected": "b"}, "prompt[0]", "message dict"),
    (
        {"prompt": [{"role": "user", "content": 5}], "chosen": "a", "rejected": "b"},
        "prompt[0]",
        "string 'role'",
    ),
    (
        {"prompt": [{"role": "bot", "content": "q"}], "chosen": "a", "rejected": "b"},
        "prompt[0]",
        "unknown role 'bot'",
    ),
    ({"prompt": [], "chosen": "a", "rejected": "b"}, "prompt", "empty message list"),
    ({"prompt": [USER], "chosen": [USER], "rejected": "b"}, "chosen", "not from the assistant"),
    (
        {"chosen": "\n\nHuman: x\n\nAssistant: a", "rejected": "\n\nHuman: y\n\nAssistant: b"},
        "chosen/rejected",
        "prompts do not match",
    ),
    ({"chosen": "just text", "rejected": "other text"}, "chosen", "no '\\n\\nAssistant:'"),
    (
        {"chosen": "\n\nHuman: x\n\nAssistant: ", "rejected": "\n\nHuman: x\n\nAssistant: b"},
        "chosen",
        "is empty",
    ),
    ({"chosen": [USER, {"role": "assistant", "content": "a"}], "rejected": "text"}, None, "both be text"),
    (
        {
            "chosen": [USER, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}],
        },
        "rejected",
        "no prompt messages",
    ),
    (
        {"prompt": "other", "chosen": [USER, {"role": "assistant", "content": "a"}], "rejected": "b"},
        "chosen",
        "differ from 'prompt'",
    ),
]


@pytest.mark.parametrize(("row", "field", "fragment"), BAD_ROWS)
def test_bad_row_raises_data_error_naming_field(row, field, fragment):
    err = load_error(row)
    assert (err.source, err.line, err.field) == ("<list>", 1, field)
    assert fragment in err.message


def test_missing_hh_marker_suggests_prompt_field():
    err = load_error({"chosen": "just text", "rejected": "other text"})
    assert "add a 'prompt' field" in err.fix


# ---------------------------------------------------------------- sources


def test_fixture_file_mixed_formats_and_line_numbers():
    report = load_preferences(TEST_DATA / "prefs_mixed.jsonl")
    assert [e.origin for e in report.examples] == [f"prefs_mixed.jsonl:{n}" for n in (1, 2, 4, 5, 6)]
    assert [e.conversational for e in report.examples] == [False, False, True, False, True]
    assert report.examples[1].label == 0.8 and report.examples[1].subset == "colours"
    assert report.examples[3].chosen == " Why did the chicken cross the road?"
    assert report.summary() == "read 5 rows from prefs_mixed.jsonl: 5 kept"


def test_skip_mode_records_reasons_and_writes_rejects_atomically(tmp_path):
    source = TEST_DATA / "prefs_with_bad_rows.jsonl"
    rejects = tmp_path / "out" / "rejects.jsonl"
    report = load_preferences(source, on_error="skip", rejects_path=rejects)
    assert [e.chosen for e in report.examples] == ["yes", "good"]
    assert report.examples[1].label == 0.25
    assert [origin for origin, _ in report.rejected] == [f"prefs_with_bad_rows.jsonl:{n}" for n in (2, 3, 4)]
    assert "identical" in report.rejected[0][1] and "invalid JSON" in report.rejected[1][1]
    assert report.rejected[2][1] == "chosen: expected a string, got int"
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["origin"] for r in lines] == [o for o, _ in report.rejected]
    assert lines[0]["row"] == {"prompt": "same", "chosen": "same answer", "rejected": "same answer"}
    assert lines[1]["row"].startswith('{"prompt": "broken"')  # unparseable line kept as raw text
    assert sorted(p.name for p in rejects.parent.iterdir()) == ["rejects.jsonl"]  # no temp file left
    assert report.summary() == (
        f"read 5 rows from prefs_with_bad_rows.jsonl: 2 kept, 3 skipped (see rejects file {rejects})"
    )


def test_raise_mode_stops_at_first_bad_row():
    with pytest.raises(DataError) as info:
        load_preferences(TEST_DATA / "prefs_with_bad_rows.jsonl")
    assert (info.value.source, info.value.line, info.value.field) == (
        "prefs_with_bad_rows.jsonl",
        2,
        "rejected",
    )


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": oops}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        load_preferences(path)


def test_non_utf8_file_names_line_and_fix(tmp_path):
    path = tmp_path / "latin1.jsonl"
    good = '{"prompt": "q", "chosen": "a", "rejected": "b"}\n'
    path.write_bytes(good.encode() + '{"prompt": "café", "chosen": "a", "rejected": "b"}\n'.encode("latin-1"))
    with pytest.raises(DataError) as info:
        load_preferences(path, on_error="skip")  # a file-level problem: raises even when skipping
    assert info.value.line == 2 and "UTF-8" in info.value.message and "re-encode" in info.value.fix


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match="file not found") as info:
        load_preferences(path)
    assert info.value.source == str(path)


def test_hub_name_offline_says_not_local_and_hub_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        DataError, match="does not exist locally and could not be loaded from the Hugging Face hub"
    ):
        load_preferences("no-such-owner-genpref/no-such-dataset")


ROWS = [
    {"prompt": "Q1", "chosen": "A1", "rejected": "B1", "prob": 0.9, "margin": 0.5, "subset": "s"},
    {"prompt": "Q2", "chosen": "A2", "rejected": "B2", "prob": 1.0, "margin": 1.0, "subset": "t"},
]


def _write_json(path: Path) -> None:
    path.write_text(json.dumps(ROWS))


def _write_jsonl_gz(path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS)


def _write_csv(path: Path) -> None:
    lines = ["prompt,chosen,rejected,prob,margin,subset"] + [
        f"{r['prompt']},{r['chosen']},{r['rejected']},{r['prob']},{r['margin']},{r['subset']}" for r in ROWS
    ]
    path.write_text("\n".join(lines) + "\n")


def _write_parquet(path: Path) -> None:
    import datasets

    datasets.Dataset.from_list(ROWS).to_parquet(str(path))


@pytest.mark.parametrize(
    ("suffix", "writer"),
    [
        (".json", _write_json),
        (".jsonl.gz", _write_jsonl_gz),
        (".csv", _write_csv),
        (".parquet", _write_parquet),
    ],
)
def test_every_file_format_gives_the_same_examples(tmp_path, suffix, writer):
    path = tmp_path / f"d{suffix}"
    writer(path)
    got = load_preferences(path).examples
    expected = load_preferences(ROWS).examples
    assert [(e.prompt, e.chosen, e.rejected, e.label, e.margin, e.subset) for e in got] == [
        (e.prompt, e.chosen, e.rejected, e.label, e.margin, e.subset) for e in expected
    ]
    assert got[1].origin == (f"d{suffix}:3" if suffix == ".csv" else f"d{suffix}:2")


def test_datasets_objects_and_split():
    import datasets

    dataset = datasets.Dataset.from_list(ROWS)
    assert [e.chosen for e in load_preferences(dataset).examples] == ["A1", "A2"]
    both = datasets.DatasetDict({"train": dataset, "test": dataset.select([1])})
    assert [e.chosen for e in load_preferences(both, split="test").examples] == ["A2"]
    with pytest.raises(DataError, match="no split 'dev'"):
        load_preferences(both, split="dev")


def test_limit_counts_kept_examples():
    report = load_preferences(TEST_DATA / "prefs_with_bad_rows.jsonl", on_error="skip", limit=2)
    assert [e.chosen for e in report.examples] == ["yes", "good"] and report.n_read == 5
    assert len(load_preferences(ROWS, limit=1).examples) == 1


def test_read_records_yields_raw_rows_with_line_numbers():
    records = list(read_records(TEST_DATA / "prefs_mixed.jsonl"))
    assert [(name, line) for name, line, _ in records][:3] == [
        ("prefs_mixed.jsonl", 1),
        ("prefs_mixed.jsonl", 2),
        ("prefs_mixed.jsonl", 4),
    ]
    assert records[0][2]["source_index"] == 7  # unknown fields are kept in the raw record


# ---------------------------------------------------------------- rankings


def test_load_rankings_and_pairs_skip_ties():
    rankings = load_rankings(TEST_DATA / "rankings.jsonl").examples
    assert rankings[0] == RankingExample(
        "Pick a number.", ("7", "3", "5"), (3.0, 1.0, 3.0), "rankings.jsonl:1"
    )
    assert rankings[1].responses == ("Hello there!", "Hi.", "Meh.")
    pairs = pairs_from_rankings(rankings)
    # ranking 1: (7,3) and (5,3) kept, (7,5) tied; ranking 2: all 3 pairs
    assert [(p.chosen, p.rejected) for p in pairs] == [
        ("7", "3"),
        ("5", "3"),
        ("Hello there!", "Hi."),
        ("Hello there!", "Meh."),
        ("Hi.", "Meh."),
    ]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "q", "responses": ["a"]}, "responses"),
        ({"prompt": "q", "responses": ["a", " "]}, "responses[1]"),
        ({"prompt": "q", "responses": ["a", "b"], "scores": [1.0]}, "scores"),
        ({"prompt": "q", "responses": ["a", "b"], "scores": [1.0, math.nan]}, "scores"),
    ],
)
def test_bad_ranking_rows(row, field):
    with pytest.raises(DataError) as info:
        load_rankings([row])
    assert info.value.field == field


def test_pairs_need_scores():
    with pytest.raises(DataError, match="no scores"):
        pairs_from_rankings([RankingExample("q", ("a", "b"))])


# ---------------------------------------------------------------- paths


def test_shared_data_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert shared_data_dir() == tmp_path.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    assert shared_data_dir() is None


def test_shared_data_dir_found_beside_repo(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    expected = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not expected.is_dir():
        pytest.skip(f"../shared/data not found: {expected} is not a folder")
    assert shared_data_dir() == expected


# ---------------------------------------------------------------- real files

HH_BAD_LINES = {87: "is empty", 517: "is empty", 926: "is empty", 1104: "is empty"} | {
    n: "prompts do not match" for n in (1255, 1689, 1951, 1953, 2037)
}


def test_real_hh_raise_names_first_bad_line(shared_data):
    with pytest.raises(DataError) as info:
        load_preferences(shared_data / HH_FILE)
    assert (info.value.line, info.value.field) == (87, "chosen")
    assert f"{HH_FILE}:87" in str(info.value)


def test_real_hh_skip_keeps_2303_and_records_9_rejects(shared_data, tmp_path):
    report: LoadReport = load_preferences(
        shared_data / HH_FILE, on_error="skip", rejects_path=tmp_path / "r.jsonl"
    )
    assert (report.n_read, len(report.examples), len(report.rejected)) == (2312, 2303, 9)
    for origin, reason in report.rejected:
        assert HH_BAD_LINES[int(origin.rsplit(":", 1)[1])] in reason
    assert sorted(int(o.rsplit(":", 1)[1]) for o, _ in report.rejected) == sorted(HH_BAD_LINES)
    example = report.examples[0]
    assert example.prompt.startswith("\n\nHuman:") and example.prompt.endswith("\n\nAssistant:")
    assert not example.conversational and example.chosen.startswith(" ")
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 9


def test_real_ultrafeedback_structure_and_its_six_bad_rows(shared_data):
    """The file is standard format (string prompt and responses); 6 of 1000 rows carry no preference."""
    with pytest.raises(DataError) as info:
        load_preferences(shared_data / UF_FILE)
    assert info.value.line == 307 and "identical" in info.value.message
    report = load_preferences(shared_data / UF_FILE, on_error="skip")
    assert (len(report.examples), len(report.rejected)) == (994, 6)
    assert [int(o.rsplit(":", 1)[1]) for o, _ in report.rejected] == [307, 479, 656, 834, 911, 998]
    first = report.examples[0]
    assert first.prompt == "how to cook t-bone in the oven" and first.chosen.startswith(
        "To cook a delicious T-bone"
    )
    assert all(isinstance(e.prompt, str) and e.label == 1.0 for e in report.examples)
