"""genpref bench nash: measurement, headline, targets (hand-computed) and the pipeline at toy size."""

import json
import types

import numpy as np
import pytest
import torch

from genpref.cyclic.games import GAMES
from genpref.selfplay.nash import NashBenchArgs, NashRun, headline, summarise


def test_summarise_by_hand():
    g = GAMES["pets"]
    d0 = np.array([0.0, 0.0, 0.0, 1.0])  # all `other`: exploitability 0.4
    d1 = np.array([1.0, 0.0, 0.0, 0.0])  # all cat: dog beats it 0.9 -> 0.4
    d2 = np.array([0.0, 0.0, 1.0, 0.0])  # all fish: cat beats it 0.9 -> 0.4
    s = summarise(g, [d0, d1, d2])
    assert s["exploitability"] == pytest.approx([0.4, 0.4, 0.4])
    assert s["average_distribution"] == [0.5, 0.0, 0.5, 0.0]  # π_1..π_T, not π_0
    # ½ cat + ½ fish: dog's value = .5*.9 + .5*.1 = .5; cat's = .25+.45 = .7 -> 0.2
    assert s["average_exploitability"] == pytest.approx(0.2)
    assert s["tv_to_nash"][0] == pytest.approx(1.0)


def test_headline_takes_the_worse_game_and_bt_at_its_best():
    def method(x):
        return {"average_exploitability": x}

    results = {
        "minutes": 3.0,
        "games": {
            "a": {
                "methods": {
                    "gpo": method(0.02),
                    "sppo": method(0.04),
                    "bt_reward": method(0.3),
                    "bt_dpo": method(0.2),
                }
            },
            "b": {
                "methods": {
                    "gpo": method(0.05),
                    "sppo": method(0.01),
                    "bt_reward": method(0.1),
                    "bt_dpo": method(0.4),
                }
            },
        },
    }
    assert headline(results) == {
        "gpo_exploitability": 0.05,
        "sppo_exploitability": 0.04,
        "bt_exploitability": 0.2,  # game a: min(.3, .2); game b: min(.1, .4); worse game: .2
        "minutes": 3.0,
    }


class _FakeJudge:
    """Categories 'a' ≻ 'b' with logit 2 (P = σ(2)); same text: 0."""

    config = types.SimpleNamespace(temperature=1.0)

    def rank(self, prompt, texts):
        v = torch.tensor([1.0 if t == "a" else -1.0 for t in texts])
        score = v[:, None] - v[None, :]  # (K, K): ±2 or 0
        return types.SimpleNamespace(prob_matrix=torch.sigmoid(score), score_matrix=score)


def test_targets_sppo_gpo_and_optimistic_by_hand():
    run = NashRun(NashBenchArgs(games=["pets"]))
    judge = _FakeJudge()
    # K = 2 samples a, b: GPO target of a = mean(0, 2) = 1; SPPO: mean(½, σ(2)) − ½
    g, prob = run.targets("gpo", judge, "x", ["a", "b"], None)
    assert g == pytest.approx([1.0, -1.0])
    sig = float(torch.sigmoid(torch.tensor(2.0)))
    assert torch.tensor(prob).flatten().tolist() == pytest.approx([0.5, sig, 1 - sig, 0.5])  # their P matrix
    assert run.targets("sppo", judge, "x", ["a", "b"], None)[0] == pytest.approx(
        [sig / 2 - 0.25, 0.25 - sig / 2]
    )
    # optimistic: 2 g_t − g_{t−1}; previous samples (b, b): g_{t−1}(a) = 2, g_{t−1}(b) = 0
    run.args.update_rule = "optimistic"
    g, prob = run.targets("gpo", judge, "x", ["a", "b"], ["b", "b"])
    assert g == pytest.approx([2 * 1 - 2, 2 * -1 - 0]) and len(prob) == 2  # P of the current samples only
    run.args.update_rule = "mwu"
    assert run.targets("gpo", judge, "x", ["a", "b"], ["b", "b"])[0] == pytest.approx([1.0, -1.0])


def test_unknown_game_or_method_is_a_clear_error():
    from genpref.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown game or method: chess"):
        NashRun(NashBenchArgs(games=["chess"]))


@pytest.mark.slow
def test_bench_nash_end_to_end_at_toy_size(tmp_path):
    """The real policy and judges, every method, 2 iterations on 2 prompts: results, plot, headline."""
    from genpref.cli import main

    out = tmp_path / "nash" / "results.json"
    code = main(
        ["bench", "nash", "--output", str(out), "--games", "[pets_weighted]", "--iterations", "2",
         "--prompts", "2", "--k", "4", "--judge_pairs", "3", "--judge_epochs", "1", "--epochs", "1",
         "--update_rule", "optimistic", "--judge_restarts", "1"]
    )  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    assert set(results["headline"]) == {
        "gpo_exploitability",
        "sppo_exploitability",
        "bt_exploitability",
        "minutes",
    }
    assert results["config"]["update_rule"] == "optimistic"
    game = results["games"]["pets_weighted"]
    assert game["nash"] == pytest.approx([1 / 3, 2 / 9, 4 / 9, 0], abs=1e-4)
    g = GAMES["pets_weighted"]
    for name, m in game["methods"].items():
        assert len(m["distributions"]) == 3, name  # π_0, π_1, π_2
        for d, e in zip(m["distributions"], m["exploitability"]):
            assert sum(d) == pytest.approx(1, abs=1e-3) and e == pytest.approx(
                g.exploitability(np.array(d)), abs=1e-3
            )
    assert (
        game["methods"]["gpo"]["distributions"][0] == game["methods"]["bt_dpo"]["distributions"][0]
    )  # same π_0
    for name in ("gpo", "sppo"):  # measured steps against perfect multiplicative weights
        m = game["methods"][name]
        assert len(m["effective_eta"]) == 2 and all(e >= 0 for e in m["effective_eta"])
        assert m["perfect_mwu"]["exact_average_exploitability"] >= 0
    assert "effective_eta" not in game["methods"]["bt_dpo"]
    assert (out.parent / "results.png").stat().st_size > 10_000
    assert set(game["judges"]) == {"gpm", "bt"}
    gpm, bt = game["judges"]["gpm"], game["judges"]["bt"]
    assert len(bt["validation_error"]) == 1  # BT is trained once
    assert 1 <= len(gpm["validation_error"]) <= 2 and gpm["kept_attempt"] < len(gpm["validation_error"])
    assert len(gpm["validation_edge_error"]) == len(gpm["validation_error"])
    kept = gpm["validation_edge_error"][gpm["kept_attempt"]]
    assert kept == min(gpm["validation_edge_error"]) and 0 <= kept <= 1
    if len(gpm["validation_error"]) == 2:  # retrained only because the first was off
        cfg = results["config"]
        assert (
            gpm["validation_error"][0] > cfg["judge_max_error"]
            or gpm["validation_edge_error"][0] > cfg["judge_max_edge_error"]
        )


def test_oracle_judge_reads_categories_and_gives_the_exact_preferences():
    from genpref.selfplay.nash_judges import OracleJudge

    r = OracleJudge(GAMES["pets"]).rank("x", ["cat.", "A dog!", "hello"])
    assert np.allclose(r.prob_matrix.numpy(), [[0.5, 0.1, 0.9], [0.9, 0.5, 0.9], [0.1, 0.1, 0.5]])
    assert r.score_matrix[1, 0].item() == pytest.approx(np.log(9))


def test_judge_error_is_the_mean_distance_to_the_soft_labels():
    from genpref.data.types import PreferenceExample
    from genpref.selfplay.nash_judges import OracleJudge, judge_error

    judge = OracleJudge(GAMES["pets_weighted"])
    rows = [
        PreferenceExample("q", "dog.", "cat.", label=0.9),  # exact: error 0
        PreferenceExample("q", "fish.", "dog.", label=0.5),  # oracle 0.8: error 0.3
    ]
    assert judge_error(judge, rows) == pytest.approx(0.15)


def test_judge_edge_error_is_the_worst_mean_gap_of_an_oriented_category_pair():
    """cat/dog rows fit exactly (gap 0); dog/fish: fish ≻ dog judged 0.72 for 0.8 (−0.08, i.e. dog ≻ fish
    +0.08) and dog ≻ fish judged 0.26 for 0.2 (+0.06): mean +0.07. Same-category rows are skipped."""
    from genpref.data.types import PreferenceExample
    from genpref.selfplay.nash_judges import judge_edge_error

    rows = [
        PreferenceExample("q", "dog.", "cat.", label=0.7),
        PreferenceExample("q", "cat.", "dog.", label=0.3),
        PreferenceExample("q", "fish.", "dog.", label=0.8),
        PreferenceExample("q", "dog.", "fish.", label=0.2),
        PreferenceExample("q", "cat.", "cat!", label=0.5),
    ]
    probs = np.array([0.7, 0.3, 0.72, 0.26, 0.9])
    assert judge_edge_error(GAMES["pets_skewed"], rows, probs) == pytest.approx(0.07)


def test_matrices_judge_each_distinct_answer_once():
    """Repeated answers are judged once and their rows and columns copied; one distinct answer ties itself."""
    from genpref.selfplay.nash_judges import OracleJudge

    game = GAMES["pets_skewed"]
    seen = []

    class Recording(OracleJudge):
        def rank(self, prompt, texts):
            seen.append(list(texts))
            return super().rank(prompt, texts)

    run = NashRun(NashBenchArgs(games=["pets_skewed"]))
    texts = ["dog", "cat", "dog", "fish", "cat", "dog"]
    prob, logit = run.matrices(Recording(game), "q", texts)
    assert seen == [["dog", "cat", "fish"]]
    full = OracleJudge(game).rank("q", texts)
    assert torch.equal(prob, full.prob_matrix) and torch.allclose(logit, full.score_matrix)
    prob, logit = run.matrices(Recording(game), "q", ["cat"] * 4)
    assert prob.shape == (4, 4) and (prob == 0.5).all() and (logit == 0).all()


@pytest.mark.slow
def test_frozen_judges_learn_the_cycle_and_bt_cannot(tmp_path):
    """Judges on a frozen MiniLM (heads trained on cached features, session 14's recipe) on
    ``pets_skewed``: the GPM holds every edge of the cycle within the bench's own check on held-out
    comparisons; the BT model on the same rows cannot (a scalar has no cycle), whatever its training."""
    from genpref.selfplay.nash_judges import judge_report, train_game_judges

    game = GAMES["pets_skewed"]
    args = NashBenchArgs(
        games=["pets_skewed"], methods=["gpo", "bt_reward"], judge_restarts=0, judge_finetune="frozen",
        judge_epochs=200, judge_batch_size=64, judge_head_lr=3e-2, judge_max_length=64,
    )  # fmt: skip
    judges, training = train_game_judges(args, game, list(game.prompts[:1]), [], tmp_path)
    assert training["gpm"]["validation_edge_error"][0] <= args.judge_max_edge_error
    gpm = judge_report(judges["gpm"], game, game.prompts[0])
    bt = judge_report(judges["bt"], game, game.prompts[0])
    assert gpm["mean_abs_error_vs_oracle"] < 0.03 < 0.1 < bt["mean_abs_error_vs_oracle"]
    prob = np.array(gpm["prob"])  # dog ≻ cat, fish ≻ dog, cat ≻ fish: the cycle, each edge on its side
    assert prob[1, 0] > 0.6 and prob[2, 1] > 0.6 and prob[0, 2] > 0.6
