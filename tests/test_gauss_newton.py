"""The sample-space Gauss-Newton solver of self-play (genpref.selfplay.gauss_newton)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genpref.selfplay.gauss_newton import gauss_newton_coefficients, gauss_newton_layers, ghost_gram


def test_coefficients_hand_values():
    """K = diag(2, 1), r = (1, 1), no damping → α = (½, 1) and K α = r; damping shrinks α."""
    k = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    alpha = gauss_newton_coefficients(k, torch.ones(2), torch.ones(2), 0.0)
    assert alpha.tolist() == pytest.approx([0.5, 1.0])
    # λ = 1 · tr(K)/2 = 1.5: α = r / (K_ii + 1.5)
    damped = gauss_newton_coefficients(k, torch.ones(2), torch.ones(2), 1.0)
    assert damped.tolist() == pytest.approx([1 / 3.5, 1 / 2.5])


def test_coefficients_undo_overlap_and_count():
    """Two coupled rows (K_12 = 0.9) asking for opposite moves: one gradient step (α ∝ w r) moves the
    rare row the wrong way; Gauss-Newton's K α equals r exactly whatever the weights."""
    k = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    r = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    w = torch.tensor([7.0, 1.0], dtype=torch.float64)  # row 1 drawn 7 times, row 2 once
    gradient_step = k @ (w * r)
    assert gradient_step[1] < 0  # the rare row falls although its target asks it to rise
    alpha = gauss_newton_coefficients(k, w, r, 0.0)
    assert (k @ alpha).tolist() == pytest.approx(r.tolist())


def test_ghost_gram_equals_per_row_gradients():
    """Σ_{t,s}(a_it·a_js)(b_it·b_js) is the Gram matrix of the per-row weight gradients Σ_t b_it a_itᵀ."""
    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 4, dtype=torch.float64), torch.randn(3, 5, 6, dtype=torch.float64)
    grads = torch.stack([(b[i].T @ a[i]).reshape(-1) for i in range(3)]).double()
    assert torch.allclose(ghost_gram(a, b), grads @ grads.T, rtol=1e-10, atol=1e-10)
    assert torch.allclose(ghost_gram(a, b, block=5), grads @ grads.T, rtol=1e-10, atol=1e-10)  # row blocks


def test_layers_leave_out_the_output_embedding():
    from tiny_models import tiny_llama

    from genpref.policy.model import load_policy

    lm, _ = load_policy(tiny_llama())
    layers = gauss_newton_layers(lm)
    assert lm.get_output_embeddings() not in layers
    assert len(layers) == 2 * 7 and all(isinstance(m, nn.Linear) for m in layers)  # q k v o gate up down


def _rows(tok):
    from genpref.data.encode import Encoded
    from genpref.selfplay.recipe import SelfPlayItem

    rows = []
    for i, (prompt, answers) in enumerate(
        [("Pick one: cat or dog?", [" cat.", " dog.", " cat!"]), ("Fish?", [" yes", " no"])]
    ):
        ids = tok(prompt)["input_ids"]
        for answer in answers:
            rows.append(SelfPlayItem(Encoded(ids + tok(answer)["input_ids"], len(ids), False), 0.0, 0.0, i))
    return rows


def _logps(model, tok, rows):
    from genpref.policy.sequences import make_batch

    with torch.no_grad():
        return model(**make_batch([r.seq for r in rows], packing=False, pad_id=tok.pad_token_id))[0].double()


def test_a_step_moves_every_row_by_its_target(tmp_path):
    """On a tiny Llama, one undamped step moves each row's log-ratio by η·g to first order (small η: the
    linearisation holds), while one SGD step of the same loss does not (its moves are K·w·g, not g)."""
    from tiny_models import tiny_llama

    from genpref.policy.logprobs import PolicyLogps
    from genpref.policy.model import load_policy
    from genpref.policy.sequences import make_batch
    from genpref.selfplay.gauss_newton import gauss_newton_step

    lm, tok = load_policy(tiny_llama())
    model = PolicyLogps(lm, 4096)
    rows = _rows(tok)
    before = _logps(model, tok, rows)
    targets = [0.5, -0.4, 0.1, -0.3, 0.3]
    for r, lp, g in zip(rows, before.tolist(), targets):
        r.ref_logp, r.target = lp, g
    eta = 0.01
    batch = make_batch([r.seq for r in rows], packing=False, pad_id=tok.pad_token_id)
    stats = gauss_newton_step(model, lm, batch, rows, eta, 0.0, False)
    moved = (_logps(model, tok, rows) - before).tolist()
    assert moved == pytest.approx([eta * g for g in targets], rel=0.05, abs=2e-5)
    assert stats["fit_residual"] < 1e-6 * eta and stats["rows"] == 5
    # the embeddings and norms kept their values
    fresh, _ = load_policy(tiny_llama())
    assert torch.equal(fresh.get_input_embeddings().weight, lm.get_input_embeddings().weight)
    assert all(p.requires_grad for p in lm.parameters())  # restored after the step


def test_train_on_items_with_the_gauss_newton_solver_saves_a_final_model(tmp_path):
    """``solver: gauss_newton`` through the self-play training entry point: the policy moves, its metrics
    have one line per step and ``final`` holds a loadable model."""
    import json

    from tiny_models import tiny_llama

    from genpref.policy.logprobs import PolicyLogps
    from genpref.policy.model import load_policy
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.run import train_on_items
    from genpref.train.loop import start_run
    from genpref.train.run_dir import claim_run_dir

    lm, tok = load_policy(tiny_llama())
    rows = _rows(tok)
    before = _logps(PolicyLogps(lm, 4096), tok, rows)
    for r, lp, g in zip(rows, before.tolist(), [0.5, -0.4, 0.1, -0.3, 0.3]):
        r.ref_logp, r.target = lp, g
    cfg = SelfPlayConfig(k=2, eta=0.05, solver="gauss_newton", gauss_newton_steps=2, gauss_newton_damping=0.0)
    out = tmp_path / "train"
    with claim_run_dir(out, resume=False, overwrite=True):
        acc, _ = start_run({"x": 1}, cfg.train, out, resume=False)
        result = train_on_items(cfg, acc, lm, tok, rows, out, None)
    assert result.steps == 2
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2] and lines[1]["residual_abs_mean"] < lines[0][
        "residual_abs_mean"
    ]
    saved, _ = load_policy(str(out / "final"))
    moved = _logps(PolicyLogps(saved, 4096), tok, rows) - before
    assert moved.tolist() == pytest.approx([0.05 * g for g in [0.5, -0.4, 0.1, -0.3, 0.3]], rel=0.1, abs=1e-4)


def test_layers_reading_one_input_share_its_product():
    """q/k/v-like layers with one input: the grouped Gram equals the sum of each layer's own."""
    from genpref.selfplay.gauss_newton import _layers_gram

    torch.manual_seed(1)
    q, k, o = nn.Linear(4, 6), nn.Linear(4, 3, bias=False), nn.Linear(6, 4)
    a = torch.randn(3, 5, 4, dtype=torch.float64)
    inputs = {q: a, k: a, o: torch.randn(3, 5, 6, dtype=torch.float64)}
    grads = {q: torch.randn(3, 5, 6, dtype=torch.float64), k: torch.randn(3, 5, 3, dtype=torch.float64)}
    grads[o] = torch.randn(3, 5, 4, dtype=torch.float64)
    each = sum(ghost_gram(inputs[m], grads[m]) for m in (q, k, o))
    biases = sum(grads[m].sum(1) @ grads[m].sum(1).T for m in (q, o))
    assert torch.allclose(_layers_gram([q, k, o], inputs, grads), each + biases, rtol=1e-10, atol=1e-10)


def test_gauss_newton_in_several_processes_is_refused_with_the_fix(tmp_path):
    from types import SimpleNamespace

    from genpref.errors import ConfigError
    from genpref.selfplay.config import SelfPlayConfig
    from genpref.selfplay.run import fit_gauss_newton

    cfg = SelfPlayConfig(k=2, solver="gauss_newton")
    with pytest.raises(ConfigError, match=r"one process; this run has 2.*\n.*fix: .*solver: gradient"):
        fit_gauss_newton(cfg, SimpleNamespace(num_processes=2), None, None, [], tmp_path, False, 1.0)
