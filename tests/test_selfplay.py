"""Self-play (SPPO / GPO): generation log-probs, targets, the square loss, and resumable stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_bert, tiny_llama

from genpref.losses.selfplay import selfplay_square_loss, sppo_target
from genpref.selfplay.config import SelfPlayConfig
from genpref.selfplay.generate import SamplingConfig, TransformersGenerator, prompt_ids
from genpref.selfplay.run import targets


def test_square_loss_hand_values():
    # ρ = (−10) − (−12) = 2; η·g = 4·0.25 = 1 → (2 − 1)² = 1;  LN: ρ/|y| = 2/4 = 0.5 → (0.5 − 1)² = 0.25
    pol, ref, tgt = torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([0.25])
    assert selfplay_square_loss(pol, ref, tgt, eta=4.0).item() == 1.0
    assert selfplay_square_loss(pol, ref, tgt, eta=4.0, lengths=torch.tensor([4])).item() == 0.25
    assert torch.equal(sppo_target(torch.tensor([0.5, 1.0])), torch.tensor([0.0, 0.5]))


def test_targets_by_hand_with_and_without_self():
    # P rows: sample 0 beats 1 with 0.8 and 2 with 0.6; diagonal ½
    prob = [[0.5, 0.8, 0.6], [0.2, 0.5, 0.3], [0.4, 0.7, 0.5]]
    score = [[0.0, 1.0, 0.5], [-1.0, 0.0, -0.4], [-0.5, 0.4, 0.0]]
    jd = {"prob_matrix": prob, "logit_matrix": score, "score_matrix": [[9.0] * 3] * 3}  # GPO reads the logits
    sppo = targets(SelfPlayConfig(algorithm="sppo"), jd)
    assert sppo == pytest.approx(
        [(0.5 + 0.8 + 0.6) / 3 - 0.5, (0.2 + 0.5 + 0.3) / 3 - 0.5, (0.4 + 0.7 + 0.5) / 3 - 0.5]
    )
    sppo_x = targets(SelfPlayConfig(algorithm="sppo", include_self=False), jd)
    assert sppo_x[0] == pytest.approx((0.8 + 0.6) / 2 - 0.5)
    gpo = targets(SelfPlayConfig(algorithm="gpo"), jd)
    assert gpo == pytest.approx([0.5, -1.4 / 3, -0.1 / 3])
    assert targets(SelfPlayConfig(algorithm="gpo", target_clip=0.2), jd)[0] == pytest.approx(0.2)


def test_generation_logps_match_a_fresh_forward():
    """log π(y|x) recorded from the sampling logits (T = 1) equals a fresh forward on the same tokens."""
    from genpref.data.encode import Encoded
    from genpref.policy.logprobs import completion_logps
    from genpref.policy.model import load_policy
    from genpref.policy.sequences import make_batch

    model, tok = load_policy(tiny_llama())
    gen = TransformersGenerator(
        model, tok, SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=10, batch_size=8)
    )
    prompts = [
        "Name a fruit.",
        [{"role": "user", "content": "Say something kind, please, about a long day."}],
    ]
    samples = gen.generate(prompts, n=3, seed=5, progress=False)
    seqs, recorded = [], []
    for p, ss in zip(prompts, samples):
        ids = prompt_ids(tok, p)
        for s in ss:
            seqs.append(Encoded(ids + s.token_ids, len(ids), False))
            recorded.append(s.logp)
    with torch.no_grad():
        fresh, counts = completion_logps(model, **make_batch(seqs, packing=True, pad_id=tok.pad_token_id))
    assert torch.allclose(fresh, torch.tensor(recorded), atol=1e-3, rtol=1e-4)
    assert all(c == len(s.token_ids) for c, s in zip(counts.tolist(), [s for ss in samples for s in ss]))
    again = gen.generate(prompts, n=3, seed=5, progress=False)  # reproducible per seed
    assert [s.token_ids for ss in again for s in ss] == [s.token_ids for ss in samples for s in ss]


def test_shared_prompt_prefill_gives_the_same_samples():
    """Encoding each distinct prompt once and copying its cache to its samples changes nothing:
    same tokens and recorded log-probs as encoding every row (left padding, two prompt lengths)."""
    from dataclasses import replace

    from genpref.policy.model import load_policy

    model, tok = load_policy(tiny_llama())
    sampling = SamplingConfig(temperature=0.9, top_p=0.95, max_new_tokens=8, batch_size=8)
    prompts = ["Name a fruit.", [{"role": "user", "content": "Say something kind about a long, long day."}]]
    shared = TransformersGenerator(model, tok, sampling).generate(prompts, n=4, seed=3, progress=False)
    plain = TransformersGenerator(model, tok, replace(sampling, share_prompt_prefill=False)).generate(
        prompts, n=4, seed=3, progress=False
    )
    flat = lambda out: [s for ss in out for s in ss]  # noqa: E731
    assert [s.token_ids for s in flat(shared)] == [s.token_ids for s in flat(plain)]
    assert torch.allclose(
        torch.tensor([s.logp for s in flat(shared)]), torch.tensor([s.logp for s in flat(plain)]), atol=1e-4
    )
    assert len({tuple(s.token_ids) for s in flat(shared)}) > 2  # really sampled, not one repeated answer


def test_fit_prompts_skips_long_prompts_and_reports_them():
    from genpref.models.backbone import load_tokenizer
    from genpref.selfplay.prompts import fit_prompts

    tok = load_tokenizer(tiny_llama())
    prompts = ["short one", "a " * 200, "short two", "b " * 300, "short three", "short four"]
    lengths = [len(prompt_ids(tok, p)) for p in prompts]
    cap = max(lengths[0], lengths[2], lengths[4], lengths[5])
    assert lengths[1] > cap and lengths[3] > cap
    kept, skipped = fit_prompts(prompts, tok, cap, limit=3)
    assert kept == ["short one", "short two", "short three"] and skipped == 2
    assert fit_prompts(prompts, tok, None, limit=2) == (prompts[:2], 0)
    assert fit_prompts(prompts, tok, cap, limit=None) == ([p for p in prompts if len(p) < 20], 2)


def test_policy_sees_plain_prompts_as_a_user_turn():
    """An instruct policy must answer the prompt, not continue its text: with prompts.chat (default)
    plain prompts get the chat template and its assistant header; the judge keeps the plain prompt."""
    from genpref.models.backbone import load_tokenizer, resolve_backbone
    from genpref.selfplay.config import PromptsConfig
    from genpref.selfplay.run import policy_prompts

    tok = load_tokenizer(resolve_backbone("smollm2-135m"))
    chat = SelfPlayConfig()
    plain = SelfPlayConfig(prompts=PromptsConfig(chat=False))
    messages = [{"role": "user", "content": "Hi?"}]
    assert policy_prompts(chat, ["Hi?", messages]) == [messages, messages]
    assert policy_prompts(plain, ["Hi?"]) == ["Hi?"]
    text = tok.decode(prompt_ids(tok, policy_prompts(chat, ["Hi?"])[0]))
    assert text.startswith("<|im_start|>system") and text.endswith("Hi?<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(prompt_ids(tok, "Hi?")) == "Hi?"


def test_no_prompt_fitting_max_prompt_tokens_is_a_clear_error():
    from genpref.errors import ConfigError
    from genpref.selfplay.config import PromptsConfig
    from genpref.selfplay.run import training_prompts
    from genpref.train.po_config import PolicyConfig

    cfg = SelfPlayConfig(policy=PolicyConfig(model=tiny_llama()), prompts=PromptsConfig(max_prompt_tokens=3))
    with pytest.raises(
        ConfigError, match="no training prompt in builtin:train fits prompts.max_prompt_tokens=3"
    ):
        training_prompts(cfg)
    cfg.prompts.max_prompt_tokens = 10_000
    assert len(training_prompts(cfg)) == 24


def test_builtin_train_and_eval_prompts_are_disjoint():
    from genpref.selfplay.config import PromptsConfig
    from genpref.selfplay.prompts import load_prompts

    train, evals = load_prompts(PromptsConfig().train), load_prompts(PromptsConfig().eval)
    assert train and evals and not set(train) & set(evals)
    assert sorted(train + evals) == sorted(load_prompts("builtin"))


def _judge(tmp: Path) -> str:
    from genpref.models.config import PreferenceModelConfig
    from genpref.models.preference_model import PreferenceModel

    torch.manual_seed(0)
    path = tmp / "judge"
    PreferenceModel.from_config(PreferenceModelConfig(type="gpm", k=2, backbone=tiny_bert())).save_pretrained(
        path
    )
    return str(path)


def test_judge_stage_saves_logits_whose_sigmoid_is_the_probability(tmp_path):
    from genpref.models.preference_model import PreferenceModel
    from genpref.selfplay.generate import Sample
    from genpref.selfplay.run import judge_stage

    model = PreferenceModel.from_pretrained(_judge(tmp_path))
    samples = [[Sample(t, [1], 0.0, True) for t in ("yes", "no thanks", "maybe later", "sure")]]
    rows, _ = judge_stage(
        SelfPlayConfig(judge="j"), tmp_path / "it", ["Coffee?"], samples, "p", lambda: model
    )
    prob, score, logit = (torch.tensor(rows[0][m]) for m in ("prob_matrix", "score_matrix", "logit_matrix"))
    # Tolerances that hold on a GPU too: s(a≻b) and s(b≻a) come from different rows of batched fp32
    # GEMMs (different kernels' summation orders, ~1e-6 relative), then × 1/τ = 10.
    assert model.config.temperature == 0.1 and torch.allclose(logit, score / 0.1, rtol=1e-5, atol=1e-5)
    assert torch.allclose(torch.sigmoid(logit), prob, atol=1e-5)
    assert torch.allclose(logit, -logit.T, rtol=1e-4, atol=1e-4) and logit.abs().max() > 0


def _command(tmp: Path, judge: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "genpref",
        "selfplay",
        "--judge",
        judge,
        "--policy.model",
        tiny_llama(),
        "--prompts.limit",
        "4",
        "--prompts.eval_limit",
        "4",
        "--k",
        "3",
        "--iterations",
        "2",
        "--sampling.max_new_tokens",
        "12",
        "--eval.max_new_tokens",
        "12",
        "--train.batch_size",
        "4",
        "--train.progress",
        "false",
        "--optim.lr",
        "1e-3",
        "--output_dir",
        str(tmp / "run"),
        *extra,
    ]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    """Kill a real run mid-way (SIGKILL), rerun the same command: it continues and ends where an
    uninterrupted run ends; finished stages are not redone."""
    judge = _judge(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    straight = subprocess.run(
        _command(tmp_path / "a", judge), env=env, capture_output=True, text=True, timeout=900
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    run = tmp_path / "b" / "run"
    # first kill: while iteration 0 generates (π_0's eval responses are done); second: after iteration 1's
    # generation, i.e. while it judges / trains
    for marker in (run / "eval_policy0.done.json", run / "iter-1" / "generate.done.json"):
        proc = subprocess.Popen(
            _command(tmp_path / "b", judge), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 600
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL and not (run / "results.jsonl").exists()
    resumed = subprocess.run(
        _command(tmp_path / "b", judge), env=env, capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = [json.loads(x) for x in (tmp_path / "a" / "run" / "results.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b" / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["vs_policy0"]["winrate"] for r in a] == pytest.approx(
        [r["vs_policy0"]["winrate"] for r in b], abs=1e-5
    )
    gen_a = (tmp_path / "a" / "run" / "iter-1" / "generations.jsonl").read_text()
    assert gen_a == (tmp_path / "b" / "run" / "iter-1" / "generations.jsonl").read_text()
    # a changed value that invalidates a finished stage is reported, not silently reused
    changed = subprocess.run(
        _command(tmp_path / "b", judge, "--k", "4"), env=env, capture_output=True, text=True, timeout=300
    )
    assert changed.returncode == 2 and "stage 'generate'" in changed.stderr and "k" in changed.stderr


def test_shared_prompt_logps_equal_full_sequences_in_value_and_gradient():
    """Running a prompt once for its n completions gives completion_logps' numbers and gradients."""
    from genpref.data.encode import Encoded
    from genpref.policy.logprobs import completion_logps
    from genpref.policy.model import load_policy
    from genpref.policy.sequences import make_batch, shared_prompt_groups
    from genpref.train.po import PolicyLogps

    model, tok = load_policy(tiny_llama())
    seqs = [
        Encoded([5, 6, 7, 8, 9] + [11, 12, 13], 5, False),
        Encoded([3, 4] + [14, 15], 2, False),
        Encoded([5, 6, 7, 8, 9] + [16, 17, 18, 19], 5, False),
        Encoded([3, 4] + [20], 2, False),
    ]
    full, full_counts = completion_logps(model, **make_batch(seqs, packing=False, pad_id=tok.pad_token_id))
    full.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    batch = shared_prompt_groups(seqs, tok.pad_token_id)
    assert batch["prompt_ids"].shape[0] == 2 and batch["group"].tolist() == [0, 1, 0, 1]
    assert batch["prompt_mask"].tolist() == [[1] * 5, [1, 1, 0, 0, 0]]  # the short prompt is right-padded
    shared, counts = PolicyLogps(model, 1024)(shared=batch)
    shared.sum().backward()
    assert torch.equal(counts, full_counts) and counts.tolist() == [3, 2, 4, 1]
    assert torch.allclose(shared, full, atol=1e-4)
    for p, g in zip(model.parameters(), grads):
        assert torch.allclose(p.grad, g, atol=1e-5)
