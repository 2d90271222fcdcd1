"""genpref preference models inside TRL: a reward function and a pairwise judge.

    from trl import GRPOConfig, GRPOTrainer
    from genpref.integrations.trl import GenprefReward

    trainer = GRPOTrainer(model=policy, reward_funcs=GenprefReward("runs/rm_gpm/final"), args=GRPOConfig(...))

:class:`GenprefReward` is a callable ``(prompts, completions, **kwargs) -> list[float]``, the form
``GRPOTrainer`` / ``RLOOTrainer`` (and TRL's online-DPO trainer) accept in ``reward_funcs``. The rows
of one call are grouped by prompt (equal prompts: the trainer's K generations of one prompt) and scored with :func:`genpref.integrations.engine.group_rewards`: GPM, each completion
against the uniform mixture of its group (K forwards per group); BT, its scalar reward; PairPM, its
mean win-probability within the group (K(K−1) forwards). Under several processes each process scores
the completions it holds; a group split across processes is scored within each part.

:class:`GenprefPairwiseJudge` has the pairwise-judge interface of TRL's online preference loops
(``judge(prompts, completions=[[a, b], ...]) -> winner index`` or, with ``return_scores``,
P(a ≻ b)). TRL itself is not imported here: these are plain duck-typed objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from genpref.data.types import Prompt
from genpref.integrations.engine import LocalForwards, group_rewards, pair_scores
from genpref.models import scores as S
from genpref.models.preference_model import PreferenceModel


def _load(model: PreferenceModel | str | Path) -> PreferenceModel:
    return model if isinstance(model, PreferenceModel) else PreferenceModel.from_pretrained(model)


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """A TRL completion as response text: a string, or the content of its assistant message(s)."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion if m.get("role", "assistant") == "assistant")


def as_prompt(prompt: str | list[dict[str, Any]]) -> Prompt:
    """A TRL prompt (text, or a list of chat messages) as a genpref prompt (role and content only)."""
    if isinstance(prompt, str):
        return prompt
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


class _OnTrainerDevice:
    """Moves the model, once, to the trainer's device (accelerate's process state) unless one is given."""

    def __init__(self, model: PreferenceModel | str | Path, device: str | torch.device | None) -> None:
        self.model = _load(model).eval()
        self.device = device
        self._placed = False

    def _place(self) -> None:
        if not self._placed:
            if self.device is None:
                from accelerate import PartialState

                self.device = PartialState().device  # the device TRL's Accelerator trains on
            self.model.to(self.device)
            self._placed = True


class GenprefReward(_OnTrainerDevice):
    """A genpref checkpoint as a TRL reward function (``reward_funcs=[GenprefReward(path)]``).

    Args:
        model: a ``PreferenceModel`` or a checkpoint folder written by ``genpref rm train``.
        batch_size: sequences per backbone forward; None runs one call's completions in one forward,
            as TRL does for its own reward models.
        device: None follows the trainer (accelerate's device for this process).
        name: the reward's name in TRL's logs (``rewards/<name>/mean``); default ``genpref_<type>``.
    """

    def __init__(
        self,
        model: PreferenceModel | str | Path,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(model, device)
        self.batch_size = batch_size
        self.__name__ = name or f"genpref_{self.model.config.type}"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        """One reward per (prompt, completion); extra TRL keyword arguments are ignored."""
        self._place()
        rewards = group_rewards(
            self.model,
            LocalForwards(self.model, self.batch_size),
            [as_prompt(p) for p in prompts],
            [completion_text(c) for c in completions],
        )
        return rewards.tolist()


class GenprefPairwiseJudge(_OnTrainerDevice):
    """Pairwise judge: which of two completions of a prompt wins, or P(first ≻ second).

    BT and GPM scores are exactly antisymmetric, so the presentation order cannot matter. A PairPM
    reads the pair in order; with ``shuffle_order`` (TRL's name for position debiasing) it is asked in
    both orders and P = ½(P(a ≻ b) + 1 − P(b ≻ a)), at two forwards per pair.
    """

    def __init__(
        self,
        model: PreferenceModel | str | Path,
        batch_size: int | None = 16,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(model, device)
        self.batch_size = batch_size

    def prob(self, prompts: Sequence[Any], completions: Sequence[Sequence[Any]], shuffle_order: bool = True):
        """(N,) P(completions[n][0] ≻ completions[n][1] | prompts[n])."""
        self._place()
        ps = [as_prompt(p) for p in prompts]
        a = [completion_text(c[0]) for c in completions]
        b = [completion_text(c[1]) for c in completions]
        fw = LocalForwards(self.model, self.batch_size)
        tau = self.model.config.temperature
        prob = S.preference_prob(pair_scores(self.model, fw, ps, a, b), tau)
        if self.model.config.type == "pairpm" and shuffle_order:
            prob = 0.5 * (prob + 1 - S.preference_prob(pair_scores(self.model, fw, ps, b, a), tau))
        return prob

    def judge(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Sequence[Any]],
        shuffle_order: bool = True,
        return_scores: bool = False,
    ) -> list[float] | list[int]:
        """Winner index (0 or 1; 0 on an exact tie) per pair, or P(first wins) with ``return_scores``."""
        prob = self.prob(prompts, completions, shuffle_order)
        return prob.tolist() if return_scores else (prob < 0.5).long().tolist()
