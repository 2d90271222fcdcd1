"""Exact category distributions of two-token answers (genpref.selfplay.nash_measure): a hand-computed
tree, and the logits kept by sampling equal to the policy's own next-token probabilities."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_llama

from genpref.cyclic.games import GAMES
from genpref.selfplay.nash_measure import (
    MeasureConfig,
    VocabularyCategories,
    _next_token_probs,
    answer_tree_distribution,
    category_distribution,
    from_samples,
)


def _single(tok, text: str) -> int:
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) == 1, (text, ids)
    return ids[0]


def test_answer_tree_by_hand():
    """p1: " cat" .5, " pet" .3, EOS .1, " dog" .1. After " cat": "." .8, "fish" .2 ("catfish": other).
    After " pet": " fish" .5, "." .5. " dog" is not enumerated: it keeps its first-token category.
    cat .5·.8 = .4; fish .3·.5 = .15; dog .1; other .5·.2 + .3·.5 + .1 (empty answer) = .35."""
    from genpref.policy.model import load_tokenizer

    tok = load_tokenizer(tiny_llama())
    game = GAMES["pets"]
    v = len(tok)
    vocab = VocabularyCategories(tok, game, v)
    cat, pet, dog = (_single(tok, t) for t in (" cat", " pet", " dog"))
    dot, fish_glued, fish = (_single(tok, t) for t in (".", "fish", " fish"))
    p1 = torch.zeros(v, dtype=torch.float64)
    p1[[cat, pet, tok.eos_token_id, dog]] = torch.tensor([0.5, 0.3, 0.1, 0.1], dtype=torch.float64)
    p2 = torch.zeros(2, v, dtype=torch.float64)
    p2[0, [dot, fish_glued]] = torch.tensor([0.8, 0.2], dtype=torch.float64)
    p2[1, [fish, dot]] = torch.tensor([0.5, 0.5], dtype=torch.float64)
    m = answer_tree_distribution(vocab, p1, torch.tensor([cat, pet]), p2, second_max=4)
    assert m.distribution == pytest.approx([0.4, 0.1, 0.15, 0.35])  # cat, dog, fish, other
    assert m.resolved == pytest.approx(0.9)  # all but " dog" (first token only)


def test_kept_logits_are_the_policy_probabilities_and_both_measurements_agree():
    """Sampling with keep_logits records π(t₁|x) and π(t₂|x,t₁) exactly as a forward pass gives them, so
    the sample-based measurement equals the tree built from direct forward passes on the same first
    tokens; the key/value-cache route of category_distribution gives the same second-token rows."""
    from genpref.policy.model import load_policy
    from genpref.selfplay.generate import SamplingConfig, TransformersGenerator, prompt_ids

    lm, tok = load_policy(tiny_llama())
    game = GAMES["pets"]
    prompts = list(game.prompts[:2])
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=2, batch_size=8, keep_logits=True)
    samples = TransformersGenerator(lm, tok, sampling).generate(prompts, 6, seed=0, progress=False)
    ids = [prompt_ids(tok, p) for p in prompts]
    measured = from_samples(tok, game, samples)
    vocab = VocabularyCategories(tok, game, lm.config.vocab_size)
    for i in range(2):
        p1 = _next_token_probs(lm, [ids[i]])[0]
        firsts = list(dict.fromkeys(s.token_ids[0] for s in samples[i] if len(s.token_ids) == 2))
        p2 = _next_token_probs(lm, [ids[i] + [t] for t in firsts])
        direct = answer_tree_distribution(vocab, p1, torch.tensor(firsts), p2, MeasureConfig().second_max)
        assert measured[i].distribution == pytest.approx(direct.distribution, abs=1e-5)
        assert measured[i].distribution.sum() == pytest.approx(1.0)
        cached = category_distribution(lm, tok, game, ids[i], MeasureConfig(first_max=3, first_mass=1.0))
        top = p1.argsort(descending=True)[:3]
        tree = answer_tree_distribution(
            vocab, p1, top, _next_token_probs(lm, [ids[i] + [int(t)] for t in top]), 64
        )
        assert cached.distribution == pytest.approx(tree.distribution, abs=1e-5)


def test_measuring_needs_the_logits():
    from genpref.errors import ConfigError
    from genpref.policy.model import load_tokenizer
    from genpref.selfplay.generate import Sample

    with pytest.raises(ConfigError, match="keep_logits"):
        from_samples(load_tokenizer(tiny_llama()), GAMES["pets"], [[Sample("cat", [1], -1.0, False)]])


def test_exact_measurement_refuses_longer_answers():
    from genpref.errors import ConfigError
    from genpref.selfplay.nash import NashBenchArgs, NashRun

    with pytest.raises(ConfigError, match="max_new_tokens 2 --temperature 1.0, or --measure samples"):
        NashRun(NashBenchArgs(max_new_tokens=3))
    NashRun(NashBenchArgs(max_new_tokens=3, measure="samples"))  # counting samples works at any length


def test_exactly_measured_dynamics_have_no_measurement_noise():
    """η = 0: π never moves; measured exactly every iterate is π_0, measured on 2 × 4 draws it is a
    multiple of 1/8."""
    from genpref.cyclic.dynamics import simulate, simulate_per_prompt

    p = GAMES["pets"].matrix
    pi0 = np.array([0.3, 0.3, 0.3, 0.1])
    exact = simulate(p, pi0, "sppo", 0.0, 3, prompts=2, k=4, measure_by_samples=False)
    assert np.allclose(exact["distributions"], [pi0] * 4)
    drawn = simulate(p, pi0, "sppo", 0.0, 3, prompts=2, k=4)
    assert np.allclose(np.array(drawn["distributions"][1:]) * 8 % 1, 0)
    per_prompt = simulate_per_prompt(p, np.stack([pi0, pi0]), "gpo", 0.0, 2, k=4, measure_by_samples=False)
    assert np.allclose(per_prompt["distributions"], [pi0] * 3)


def test_one_token_answers_are_measured_exactly():
    """max_new_tokens 1: π(c | x) = Σ over first tokens of category c, all of it resolved."""
    from genpref.policy.model import load_policy
    from genpref.selfplay.generate import SamplingConfig, TransformersGenerator, prompt_ids

    lm, tok = load_policy(tiny_llama())
    game = GAMES["pets"]
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=1, batch_size=8, keep_logits=True)
    samples = TransformersGenerator(lm, tok, sampling).generate([game.prompts[0]], 4, seed=0, progress=False)
    (measured,) = from_samples(tok, game, samples, max_new_tokens=1)
    p1 = _next_token_probs(lm, [prompt_ids(tok, game.prompts[0])])[0]
    vocab = VocabularyCategories(tok, game, lm.config.vocab_size)
    expected = [float(p1[vocab.category == c].sum()) for c in range(len(game.categories))]
    assert measured.resolved == 1.0
    assert measured.distribution == pytest.approx(expected, abs=1e-5)
    cat = _single(tok, " cat")
    assert vocab.category[cat] == 0 and vocab.category[_single(tok, " pet")] == 3  # cat, other


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_one_token_sampling_draws_from_the_policy(temperature):
    """max_new_tokens 1 takes one forward per prompt and n draws: each sample's recorded log-prob is
    log π(t|x) at T = 1, its text the decoded token, the draws follow softmax(z / T) (4,000 draws: the
    mass of each decile of the logits within 4.5 σ), the kept logits are the forward's, and a seed repeats the draws."""
    from genpref.policy.model import load_policy
    from genpref.selfplay.generate import SamplingConfig, TransformersGenerator, prompt_ids

    lm, tok = load_policy(tiny_llama())
    prompts = list(GAMES["pets"].prompts[:2])
    sampling = SamplingConfig(temperature=temperature, top_p=1.0, max_new_tokens=1, keep_logits=True)
    gen = TransformersGenerator(lm, tok, sampling)
    samples = gen.generate(prompts, 4000, seed=3, progress=False)
    for prompt, ss in zip(prompts, samples):
        with torch.no_grad():
            z = lm(input_ids=torch.tensor([prompt_ids(tok, prompt)])).logits[0, -1].double()
        logp, p = z.log_softmax(-1), (z / temperature).softmax(-1)
        assert len(ss) == 4000 and all(len(s.token_ids) == 1 for s in ss)
        s0 = ss[0]
        assert s0.logp == pytest.approx(float(logp[s0.token_ids[0]]), abs=1e-4)
        assert s0.text == tok.decode(s0.token_ids, skip_special_tokens=True).strip()
        assert s0.logits.shape == (1, z.shape[0]) and torch.allclose(s0.logits[0].double(), z, atol=1e-4)
        counts = torch.bincount(torch.tensor([s.token_ids[0] for s in ss]), minlength=z.shape[0]).double()
        bins = torch.bucketize(z, z.quantile(torch.linspace(0.1, 0.9, 9, dtype=z.dtype)))  # logit deciles
        freq = torch.zeros(10, dtype=z.dtype).index_add_(0, bins, counts) / 4000
        mass = torch.zeros(10, dtype=z.dtype).index_add_(0, bins, p)
        assert ((freq - mass).abs() <= 4.5 * (mass * (1 - mass) / 4000).sqrt()).all(), (freq, mass)
    again = gen.generate(prompts, 4000, seed=3, progress=False)
    assert [s.token_ids for s in again[0]] == [s.token_ids for s in samples[0]]
