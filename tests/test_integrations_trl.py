"""genpref inside TRL: the reward function equals rank(), the judge equals prob(), and a real GRPO run."""

from __future__ import annotations

import pytest
import torch
from tiny_checkpoints import trained_checkpoint
from tiny_models import tiny_llama

from genpref.integrations.engine import LocalForwards, group_rewards, prompt_groups
from genpref.integrations.trl import GenprefPairwiseJudge, GenprefReward
from genpref.models import scores as S
from genpref.models.preference_model import PreferenceModel

CHAT = [{"role": "user", "content": "Name a colour."}]
PROMPTS = ["What is 2 + 2?"] * 3 + [CHAT] * 3
RESPONSES = ["4.", "Four, of course.", "5.", "Blue.", "Green, I think.", "No."]


def test_group_mean_vs_mixture_matches_per_group():
    torch.manual_seed(0)
    emb, lam = torch.randn(5, 4), torch.softmax(torch.randn(5, 2), -1)
    groups = torch.tensor([0, 0, 1, 1, 1])
    lam[:2], lam[2:] = lam[0], lam[2]  # one gate per group
    got = S.gpm_score_vs_group_mixture(emb, groups, lam)
    assert torch.allclose(got[:2], S.gpm_score_vs_mixture(emb[:2], lam[0]), atol=1e-6)
    assert torch.allclose(got[2:], S.gpm_score_vs_mixture(emb[2:], lam[2]), atol=1e-6)
    # a group of one is compared with itself: s(y ≻ y) = 0
    assert S.gpm_score_vs_group_mixture(emb[:1], torch.zeros(1, dtype=torch.long)).item() == 0.0


def test_prompt_groups():
    assert prompt_groups(["a", "a", "b", "a"]).tolist() == [0, 0, 1, 0]
    assert prompt_groups([CHAT, CHAT, "x"]).tolist() == [0, 0, 1]


@pytest.mark.parametrize("kind", ["gpm_bert", "gpm_llama", "bt_bert", "pairpm_bert"])
@pytest.mark.parametrize("batch_size", [None, 2])
def test_group_rewards_equal_rank(kind, batch_size):
    model = PreferenceModel.from_pretrained(trained_checkpoint(kind))
    got = group_rewards(model, LocalForwards(model, batch_size), PROMPTS, RESPONSES)
    for rows in (slice(0, 3), slice(3, 6)):
        r = model.rank(PROMPTS[rows][0], RESPONSES[rows])
        if kind.startswith("gpm"):
            expected = r.score_vs_mixture  # s(y_i ≻ mixture of the group)
        elif kind.startswith("bt"):
            expected = model.embed(PROMPTS[rows], RESPONSES[rows])[0].squeeze(-1)  # the scalar reward
            assert torch.allclose(r.score_vs_mixture, expected - expected.mean(), atol=1e-5)
        else:
            expected = r.prob_vs_mixture
        assert torch.allclose(got[rows], expected, atol=1e-5), (kind, got[rows], expected)
    if kind.startswith("gpm"):
        assert abs(float(got[:3].sum())) < 1e-5  # Σ_i s(y_i ≻ mean v) = s(mean ≻ mean) = 0


def test_reward_reads_trl_conversational_rows():
    reward = GenprefReward(trained_checkpoint("gpm_bert"))
    assert reward.__name__ == "genpref_gpm"
    completions = [[{"role": "assistant", "content": r}] for r in RESPONSES[3:]]
    got = reward(prompts=[CHAT] * 3, completions=completions, trainer_state=None, answer=[1, 2, 3])
    expected = reward.model.rank(CHAT, RESPONSES[3:]).score_vs_mixture
    assert torch.allclose(torch.tensor(got), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["gpm_bert", "pairpm_bert"])
def test_pairwise_judge(kind):
    judge = GenprefPairwiseJudge(trained_checkpoint(kind))
    model = judge.model
    prompts, a, b = PROMPTS[:2], RESPONSES[:2], RESPONSES[2:4]
    pairs = [list(x) for x in zip(a, b)]
    prob = torch.tensor(judge.judge(prompts, pairs, return_scores=True))
    if kind == "gpm_bert":
        assert torch.allclose(prob, model.prob(prompts, a, b), atol=1e-5)
        swapped = torch.tensor(judge.judge(prompts, [[y, x] for x, y in pairs], return_scores=True))
        assert torch.allclose(prob + swapped, torch.ones(2), atol=1e-5)  # P(a ≻ b) = 1 − P(b ≻ a)
    else:  # both presentation orders averaged
        expected = 0.5 * (model.prob(prompts, a, b) + 1 - model.prob(prompts, b, a))
        assert torch.allclose(prob, expected, atol=1e-5)
        one_order = judge.judge(prompts, pairs, shuffle_order=False, return_scores=True)
        assert torch.allclose(torch.tensor(one_order), model.prob(prompts, a, b), atol=1e-5)
    assert judge.judge(prompts, pairs) == [0 if p >= 0.5 else 1 for p in prob.tolist()]


def test_grpo_trainer_logs_genpref_rank_scores(tmp_path):
    """A real GRPOTrainer run with a genpref GPM as reward: the per-completion rewards TRL logged equal
    rank()'s score against the mixture of the prompt's K completions, and the logged mean is their mean."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    reward = GenprefReward(trained_checkpoint("gpm_bert"))
    policy_dir = tiny_llama()
    prompts = [[{"role": "user", "content": q}] for q in ("Name a colour.", "Say hi.", "Count to 3.", "Why?")]
    k = 4
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=k,
        num_generations=k,
        max_completion_length=8,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        seed=0,
        bf16=False,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(policy_dir),
        reward_funcs=reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=AutoTokenizer.from_pretrained(policy_dir),
    )
    trainer.train()
    logged_prompts = list(trainer._logs["prompt"])
    logged_completions = [c[0]["content"] for c in trainer._logs["completion"]]
    logged_rewards = torch.tensor(list(trainer._logs["rewards"]["genpref_gpm"]))
    assert len(logged_rewards) == k and all(p == logged_prompts[0] for p in logged_prompts)
    expected = reward.model.rank(logged_prompts[0], logged_completions).score_vs_mixture
    assert torch.allclose(logged_rewards, expected, atol=1e-5)
    assert logged_rewards.abs().max() > 0  # not the degenerate all-equal case
    last = [row for row in trainer.state.log_history if "rewards/genpref_gpm/mean" in row][-1]
    assert last["rewards/genpref_gpm/mean"] == pytest.approx(float(logged_rewards.mean()), abs=1e-5)
