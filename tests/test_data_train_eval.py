"""One rule selects the training and evaluation rows of rm train, po train and sft (issue 16).

Before, ``data.limit`` was applied after the eval hold-out in rm, before it in po, and sft ignored
``data.eval_fraction``; the same config now selects the same rows in all three recipes.
"""

from __future__ import annotations

import json

import pytest

from genpref.data.config import DataConfig
from genpref.data.load import load_preferences
from genpref.data.train_eval import load_train_eval
from genpref.errors import ConfigError


def _pairs_file(tmp_path, n_prompts=12, per_prompt=2):
    rows = [
        {"prompt": f"q{i}", "chosen": f"good {i}.{j}", "rejected": f"bad {i}.{j}"}
        for i in range(n_prompts)
        for j in range(per_prompt)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows_of_every_recipe(data: DataConfig, tmp_path, seed: int):
    from genpref.losses.policy import PolicyLoss
    from genpref.train.po import load_po_data
    from genpref.train.po_config import POTrainConfig, SFTConfig
    from genpref.train.rm import load_train_eval as rm_rows
    from genpref.train.rm_config import RMTrainConfig
    from genpref.train.sft import _load_sft_rows

    rm = RMTrainConfig(data=data)
    rm.train.seed = seed
    po = POTrainConfig(data=data)
    po.train.seed = seed
    sft = SFTConfig(data=data)
    sft.train.seed = seed

    def pairs(rows):
        return [(r.prompt, r.chosen) for r in rows]

    def completions(rows):
        return [(r.prompt, r.completion) for r in rows]

    rm_train, rm_eval = rm_rows(rm, tmp_path)
    po_train, po_eval = load_po_data(po, tmp_path, PolicyLoss.DPO)
    sft_train, sft_eval = load_train_eval(sft.data, _load_sft_rows, tmp_path, seed=sft.train.seed)
    return {
        "rm": (pairs(rm_train), pairs(rm_eval)),
        "po": (pairs(po_train), pairs(po_eval)),
        "sft": (completions(sft_train), completions(sft_eval)),
    }


@pytest.mark.parametrize("limit, eval_limit", [(None, None), (5, None), (7, 3)])
def test_same_config_selects_same_rows_in_rm_po_and_sft(tmp_path, limit, eval_limit):
    path = _pairs_file(tmp_path)
    data = DataConfig(train=str(path), eval_fraction=0.25, limit=limit, eval_limit=eval_limit)
    rows = _rows_of_every_recipe(data, tmp_path, seed=3)
    assert rows["rm"] == rows["po"] == rows["sft"]
    train, evals = rows["rm"]
    # whole prompts held out: round(0.25 * 12) = 3 prompts of 2 rows, before any limit
    assert len(evals) == min(6, eval_limit or 6)
    assert len(train) == min(18, limit or 18)
    assert not {p for p, _ in train} & {p for p, _ in evals}


def test_limit_does_not_change_the_held_out_prompts(tmp_path):
    path = _pairs_file(tmp_path)
    full = load_train_eval(DataConfig(train=str(path), eval_fraction=0.25), load_preferences, tmp_path, 0)
    cut = load_train_eval(
        DataConfig(train=str(path), eval_fraction=0.25, limit=4), load_preferences, tmp_path, 0
    )
    assert cut[1] == full[1]
    assert cut[0] == full[0][:4]


def test_eval_file_is_used_instead_of_a_hold_out(tmp_path):
    path = _pairs_file(tmp_path)
    (tmp_path / "other").mkdir()
    other = _pairs_file(tmp_path / "other", n_prompts=2)
    train, evals = load_train_eval(
        DataConfig(train=str(path), eval=str(other), eval_fraction=0.5, eval_limit=3),
        load_preferences,
        tmp_path,
        0,
    )
    assert len(train) == 24 and [e.prompt for e in evals] == ["q0", "q0", "q1"]


def test_missing_train_data_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match="data.train is required"):
        load_train_eval(DataConfig(), load_preferences, tmp_path, 0)


def test_a_list_of_training_sources_is_read_in_order_each_by_its_own_format(tmp_path):
    """UltraFeedback-style pairs plus arena-style ranking rows in one rm training set."""
    from genpref.train.rm import load_train_eval as rm_rows
    from genpref.train.rm_config import RMTrainConfig

    pairs = _pairs_file(tmp_path, n_prompts=2, per_prompt=1)
    ranking = tmp_path / "ranked.jsonl"
    ranking.write_text(
        json.dumps({"prompt": "r", "responses": ["a", "b", "c"], "scores": [9, 5, 1]})
        + "\n"
        + json.dumps({"prompt": "s", "responses": ["x", "y"], "scores": [4, 4]})
        + "\n"  # a tie: no pair
    )
    cfg = RMTrainConfig(data=DataConfig(train=[str(pairs), str(ranking)]))
    cfg.data.ranking.min_score_gap = 4
    train, evals = rm_rows(cfg, tmp_path)
    # the two pairs first, then the ranking's pairs with a gap >= 4: (a, b), (a, c), (b, c)
    assert [(r.prompt, r.chosen, r.rejected) for r in train] == [
        ("q0", "good 0.0", "bad 0.0"), ("q1", "good 1.0", "bad 1.0"),
        ("r", "a", "b"), ("r", "a", "c"), ("r", "b", "c"),
    ]  # fmt: skip
    assert evals == []
    with pytest.raises(ConfigError, match="empty list"):
        load_train_eval(DataConfig(train=[]), load_preferences, tmp_path, 0)
