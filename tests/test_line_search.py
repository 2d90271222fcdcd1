"""Self-play's line-search solver (genpref.selfplay.line_search): the step length by hand, the update
scaled in place, and on a tiny Llama an iteration's realised step that no longer depends on the
learning rate."""

import json

import pytest
import torch
from test_gauss_newton import _logps, _rows
from tiny_models import tiny_llama

from genpref.selfplay.line_search import cauchy_step_length, log_ratios, scale_update


def test_cauchy_step_length_by_hand():
    # δ = (1, 2), w = 1, t = (2, 4): β = (2 + 8) / (1 + 4) = 2 (the step fits t exactly)
    assert cauchy_step_length(torch.tensor([1.0, 2.0]), torch.ones(2), torch.tensor([2.0, 4.0])) == 2.0
    # weights: w = (1, 0) keeps only row 0: β = 2·1 / 1
    assert (
        cauchy_step_length(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]), torch.tensor([2.0, 9.0]))
        == 2.0
    )
    # δ = (1, 1), t = (1, −1): the step helps one row as much as it hurts the other: β = 0
    assert cauchy_step_length(torch.ones(2), torch.ones(2), torch.tensor([1.0, -1.0])) == 0.0
    assert cauchy_step_length(torch.zeros(2), torch.ones(2), torch.ones(2)) == 0.0  # no move, no scale


def test_log_ratios_by_hand():
    logps, ref, counts = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -2.0]), torch.tensor([2, 1])
    assert log_ratios(logps, counts, ref, False).tolist() == [0.5, 0.0]
    assert log_ratios(logps, counts, ref, True).tolist() == [0.25, 0.0]  # LN: ÷ completion tokens


def test_scale_update_by_hand():
    p = torch.nn.Parameter(torch.tensor([3.0, 5.0]))
    before = [torch.tensor([1.0, 1.0])]
    scale_update([p], before, 0.5)  # θ_t + ½ (θ − θ_t) = 1 + ½ (2, 4)
    assert p.tolist() == [2.0, 3.0]
    scale_update([p], before, 0.0)
    assert p.tolist() == [1.0, 1.0]


def _iteration(tmp_path, lr: float, solver: str):
    """One self-play iteration (one full-batch SGD step) on the tiny Llama; the rows' log-ratios after it."""
    from genpref.policy.logprobs import PolicyLogps
    from genpref.policy.model import load_policy
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.run import train_on_items
    from genpref.train.config import OptimConfig, TrainConfig
    from genpref.train.loop import start_run
    from genpref.train.run_dir import claim_run_dir

    lm, tok = load_policy(tiny_llama())
    rows = _rows(tok)
    before = _logps(PolicyLogps(lm, 4096), tok, rows)
    for r, lp, g in zip(rows, before.tolist(), [0.5, -0.4, 0.1, -0.3, 0.3]):
        r.ref_logp, r.target = lp, g
    cfg = SelfPlayConfig(
        k=2,
        eta=0.05,
        solver=solver,
        optim=OptimConfig(name="sgd", lr=lr, warmup_ratio=0.0, scheduler="constant", max_grad_norm=0.0),
        train=TrainConfig(epochs=1, batch_size=8, progress=False),
    )
    out = tmp_path / f"{solver}-{lr}"
    with claim_run_dir(out, resume=False, overwrite=True):
        acc, _ = start_run({"x": 1}, cfg.train, out, resume=False)
        result = train_on_items(cfg, acc, lm, tok, rows, out, None)
    moved = _logps(PolicyLogps(lm, 4096), tok, rows) - before
    return moved, result, out


def test_line_search_makes_the_step_independent_of_the_learning_rate(tmp_path):
    """Plain SGD moves the log-ratios in proportion to lr; with the line search the same direction is
    scaled to the least-squares length, so lr 4e-3 and 1.6e-2 land on the same log-ratios (to first
    order) and fit the targets η·g at least as well as either plain step. The scale is logged and saved;
    at lr 1e-3 it would be 17.6 and is clipped to ``line_search_max_scale`` (10)."""
    targets = torch.tensor([0.5, -0.4, 0.1, -0.3, 0.3], dtype=torch.float64) * 0.05
    plain_small, _, _ = _iteration(tmp_path, 4e-3, "gradient")
    plain_large, _, _ = _iteration(tmp_path, 1.6e-2, "gradient")
    assert plain_large.norm() / plain_small.norm() == pytest.approx(4.0, rel=0.1)
    small, result_small, out = _iteration(tmp_path, 4e-3, "line_search")
    large, result_large, _ = _iteration(tmp_path, 1.6e-2, "line_search")
    assert torch.allclose(small, large, rtol=0.05, atol=1e-4)
    scale_small = result_small.solver["line_search_scale"]
    assert scale_small / result_large.solver["line_search_scale"] == pytest.approx(4.0, rel=0.1)
    for plain in (plain_small, plain_large):
        assert ((small - targets) ** 2).sum() <= ((plain - targets) ** 2).sum() + 1e-12
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["line_search_scale"] == pytest.approx(scale_small)
    from genpref.policy.logprobs import PolicyLogps
    from genpref.policy.model import load_policy

    saved, tok = load_policy(str(out / "final"))
    rows = _rows(tok)
    fresh, _ = load_policy(tiny_llama())
    moved = _logps(PolicyLogps(saved, 4096), tok, rows) - _logps(PolicyLogps(fresh, 4096), tok, rows)
    assert torch.allclose(moved, small, atol=1e-6)  # the saved model is the scaled one
    _, clipped, _ = _iteration(tmp_path, 1e-3, "line_search")
    assert clipped.solver["line_search_scale"] == 10.0 < clipped.solver["line_search_scale_unclipped"]


def test_line_search_in_several_processes_is_refused_with_the_fix():
    from types import SimpleNamespace

    from genpref.errors import ConfigError
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.run import train_on_items

    cfg = SelfPlayConfig(k=2, solver="line_search")
    with pytest.raises(ConfigError, match=r"line_search runs in one process; this run has 2.*\n.*fix:"):
        train_on_items(cfg, SimpleNamespace(num_processes=2), torch.nn.Linear(1, 1), None, [], None, None)
