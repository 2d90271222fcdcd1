"""Preference games with a known answer: categories read off the text, an oracle preference matrix,
its exact Nash equilibrium and the exploitability of any category distribution.

A *preference game* has C categories of responses (for example the three options of
rock-paper-scissors, plus ``other`` for an answer that names none) and an oracle matrix
``P[i, j] = P(category i ≻ category j)`` with ``P + Pᵀ = 1`` (so ``P[i, i] = ½``). Two policies play
it by answering the same prompt; the symmetric zero-sum payoff is ``A = P − ½`` (antisymmetric).

* A distribution π over categories is a **Nash equilibrium** iff ``(P π)_c ≤ ½`` for every c: no
  category beats π on average (the game is symmetric, its value is ½).
* The **exploitability** of π is ``max_c (P π)_c − ½ ≥ 0``: how much a best response wins against π
  beyond a tie; it is 0 exactly at the equilibria. (SPPO, arXiv 2405.00675 §3, and GPO, arXiv
  2410.02197 §5, both target this equilibrium; a Bradley-Terry reward cannot represent a cyclic P.)

The category rule (:meth:`PreferenceGame.category`): the option whose name appears *first* in the
response, matched case-insensitively as a whole word (a plural ``s`` allowed); ``other`` when no option
is named. The rule is deliberately simple and is applied identically to the policy's samples, to the
judge's training texts and to the evaluation.

:func:`game_comparisons` turns a game into preference data for a judge: pairs of response texts
of different categories with the oracle's probability as a soft label (``PreferenceExample.label``),
so a GPM trained on them learns the game and a BT model trained on the same rows shows what a scalar
reward makes of it (:func:`genpref.cyclic.graph.analyze_comparisons` reports their cycles).
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from genpref.data.types import PreferenceExample, Prompt

OTHER = "other"
"""The category of a response that names no option."""


@dataclass(frozen=True)
class PreferenceGame:
    """Options named in the text, the oracle P(option i ≻ option j), and how ``other`` fares."""

    name: str
    options: tuple[str, ...]
    """Option names, matched as whole words (case-insensitive, plural s allowed)."""
    beats: tuple[tuple[str, str, float], ...]
    """(winner, loser, P(winner ≻ loser)) for every unordered pair of distinct options."""
    other_loses: float = 0.9
    """P(any option ≻ an answer that names none)."""
    prompts: tuple[str, ...] = ()
    """The prompts the game is played on (the policy's question)."""
    chat: bool = False
    """Give the prompts to the policy as a user turn (chat template); false: as plain text to continue."""
    near_misses: tuple[str, ...] = ()
    """Answers of the game's kind that name no option (for the pets games: other animals), taught to the
    judges as ``other`` (:func:`response_pool`)."""
    held_out_near_misses: tuple[str, ...] = ()
    """More such answers, kept out of the judges' training and used only to check them: a judge must
    also rank near misses it never saw below every option."""

    @property
    def categories(self) -> tuple[str, ...]:
        return (*self.options, OTHER)

    @cached_property
    def matrix(self) -> np.ndarray:
        """(C, C) oracle P[i, j] = P(category i ≻ category j), categories in ``self.categories`` order."""
        index = {c: i for i, c in enumerate(self.categories)}
        n = len(self.categories)
        p = np.full((n, n), 0.5)
        for winner, loser, prob in self.beats:
            p[index[winner], index[loser]] = prob
            p[index[loser], index[winner]] = 1.0 - prob
        p[: n - 1, n - 1] = self.other_loses
        p[n - 1, : n - 1] = 1.0 - self.other_loses
        pairs = {frozenset((w, loser)) for w, loser, _ in self.beats}
        missing = [
            (a, b) for a, b in itertools.combinations(self.options, 2) if frozenset((a, b)) not in pairs
        ]
        if missing:
            raise ValueError(f"game {self.name}: no P(a ≻ b) for {missing}")
        return p

    @cached_property
    def _pattern(self) -> re.Pattern:
        names = "|".join(re.escape(o) for o in sorted(self.options, key=len, reverse=True))
        return re.compile(rf"\b({names})s?\b", re.IGNORECASE)

    def category(self, text: str) -> str:
        """The first option named in ``text`` (whole word, any case, plural s allowed), else ``other``."""
        match = self._pattern.search(text)
        return match.group(1).lower() if match else OTHER

    def named(self, text: str) -> set[str]:
        """Every option named in ``text`` (same matching as :meth:`category`)."""
        return {m.group(1).lower() for m in self._pattern.finditer(text)}

    def distribution(self, texts: list[str]) -> np.ndarray:
        """(C,) share of each category among ``texts``."""
        index = {c: i for i, c in enumerate(self.categories)}
        counts = np.zeros(len(self.categories))
        for text in texts:
            counts[index[self.category(text)]] += 1
        return counts / max(len(texts), 1)

    @cached_property
    def nash(self) -> np.ndarray:
        """The game's Nash equilibrium (exact, :func:`symmetric_nash`)."""
        return symmetric_nash(self.matrix)

    def exploitability(self, pi: np.ndarray) -> float:
        """max_c (P π)_c − ½ (see :func:`exploitability`)."""
        return exploitability(self.matrix, pi)


def exploitability(p: np.ndarray, pi: np.ndarray) -> float:
    """How much the best single category wins against π beyond a tie: max_c (P π)_c − ½ ≥ 0.

    Args:
        p: (C, C) preference matrix, P + Pᵀ = 1.
        pi: (C,) distribution over categories.
    """
    return float((p @ pi).max() - 0.5)


def symmetric_nash(p: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """An exact Nash equilibrium of the symmetric zero-sum game with P(i ≻ j) = p[i, j].

    Support enumeration (exact for the small C of these games): for each support S, solve
    ``A_SS π_S = 0, Σ π_S = 1`` with ``A = P − ½`` and keep the first π ≥ 0 with ``(A π)_c ≤ 0`` for all
    c (the value of a symmetric zero-sum game is 0). Supports are tried smallest first, so a pure or
    dominated structure is found before a mixed one. Raises when no support works (cannot happen for
    an antisymmetric A, whose equilibrium always exists; kept as a guard).

    Args:
        p: (C, C) preference matrix with p + pᵀ = 1.
    Returns:
        (C,) equilibrium distribution.
    """
    a = np.asarray(p, dtype=float) - 0.5
    n = a.shape[0]
    if not np.allclose(a, -a.T, atol=1e-9):
        raise ValueError("preference matrix must satisfy P + Pᵀ = 1")
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            s = list(support)
            system = np.vstack([a[np.ix_(s, s)], np.ones((1, size))])  # (size + 1, size)
            rhs = np.concatenate([np.zeros(size), [1.0]])
            sol, *_ = np.linalg.lstsq(system, rhs, rcond=None)
            if np.abs(system @ sol - rhs).max() > 1e-7 or (sol < -tol).any():
                continue
            pi = np.zeros(n)
            pi[s] = np.clip(sol, 0.0, None)
            pi /= pi.sum()
            if (a @ pi).max() <= 1e-7:
                return pi
    raise ValueError("no equilibrium found")


def fictitious_play(p: np.ndarray, steps: int = 20000) -> np.ndarray:
    """Fictitious play's empirical distribution after ``steps`` best responses (an independent,
    slowly converging check of :func:`symmetric_nash`: its exploitability decays like O(1/√steps))."""
    a = np.asarray(p, dtype=float) - 0.5
    counts = np.zeros(a.shape[0])
    counts[0] = 1.0
    for _ in range(steps):
        counts[np.argmax(a @ counts)] += 1.0
    return counts / counts.sum()


ANSWER_TEMPLATES = (
    "{o}",
    "{o}.",
    "{o}!",
    "{o}, because it is the best.",
    "{O}",
    "{O}.",
    "{O}!",
    "I choose {o}.",
    "I pick {o}!",
    "My choice is {o}.",
    "{O}, definitely.",
    "A {o}.",
    "I would pick a {o}.",
    "I'll go with {o}.",
    "Let's say {o}.",
    "I would choose {o}, it is my favourite.",
    "Hmm, {o}.",
)
"""How a response names an option (``{o}`` lower case, ``{O}`` capitalised)."""

NON_ANSWERS = (
    "I'm not sure.",
    "That's a fun game!",
    "I cannot choose.",
    "Let me think about it.",
    "Sounds like a plan.",
    "I'm sorry, but I can't play games.",
    "What a great question!",
    "Sure, let's play.",
    "It depends on the situation.",
    "I don't have a preference.",
    "Good luck!",
    "Okay.",
)
"""Responses that name no option (category ``other``)."""

NEAR_MISS_TEMPLATES = ("{o}", "{O}", "{O}.", "A {o}.", "I would pick a {o}.")
"""How a near miss (an answer of the game's kind naming no option) is written in a judge's pool."""


def response_pool(
    game: PreferenceGame, extra: list[str] | None = None, held_out: bool = False
) -> dict[str, list[str]]:
    """Response texts per category: every option in every :data:`ANSWER_TEMPLATES` form; as ``other``
    the :data:`NON_ANSWERS`, the game's near misses in the :data:`NEAR_MISS_TEMPLATES` forms (``held_out``:
    its held-out near misses instead, for checking a judge), and those ``extra`` texts (for example the
    start policy's own samples) that name no option: a judge then knows what the policy's off-topic
    answers look like. Without near misses a judge on frozen MiniLM features ranked animals it had never
    seen anywhere (P(parrot ≻ dog) 0.98, P(puppy ≻ cat) 0.75), and every method's policy learnt to
    answer them (``pets``, seed 1: 0.78–0.86 of the mass on ``other``). (Adding the policy's answers that
    do name options made a GPM collapse: they are mostly the templates again, and the ones naming two
    options are ambiguous to a reader.) Duplicates are dropped; order is deterministic."""
    pool: dict[str, list[str]] = {c: [] for c in game.categories}
    for option in game.options:
        pool[option] += [t.format(o=option, O=option.capitalize()) for t in ANSWER_TEMPLATES]
    pool[OTHER] += list(NON_ANSWERS)
    misses = game.held_out_near_misses if held_out else game.near_misses
    pool[OTHER] += [t.format(o=m, O=m.capitalize()) for m in misses for t in NEAR_MISS_TEMPLATES]
    for text in extra or []:
        if text.strip() and not game.named(text):  # answers that name no option: real `other` text
            pool[OTHER].append(text)
    return {c: list(dict.fromkeys(texts)) for c, texts in pool.items()}


def game_comparisons(
    game: PreferenceGame,
    pool: dict[str, list[str]],
    n_per_pair: int,
    seed: int = 0,
    prompts: tuple[Prompt, ...] | None = None,
) -> list[PreferenceExample]:
    """Soft-labelled comparisons that teach a judge the game: for every ordered-by-name pair of
    distinct categories (a, b), ``n_per_pair`` rows (prompt, a text of a, a text of b) with
    ``label = P(a ≻ b)`` from the oracle; texts and prompts drawn at random (seeded).

    Same-category pairs are left out: they carry no preference (P = ½) and a GPM gives ½ to any pair
    whose embeddings coincide. ``subset`` names the pair (``"rock>paper"``) for per-pair evaluation.
    """
    rng = random.Random(seed)
    prompts = tuple(prompts or game.prompts)
    if not prompts:
        raise ValueError(f"game {game.name} has no prompts")
    index = {c: i for i, c in enumerate(game.categories)}
    rows = []
    for a, b in itertools.combinations(game.categories, 2):
        if not pool.get(a) or not pool.get(b):
            raise ValueError(f"game {game.name}: no response text for category {a if not pool.get(a) else b}")
        prob = float(game.matrix[index[a], index[b]])
        for k in range(n_per_pair):
            chosen, rejected = rng.choice(pool[a]), rng.choice(pool[b])
            label = prob
            if k % 2:  # present half the rows the other way round, so no position is favoured
                chosen, rejected, label = rejected, chosen, 1.0 - prob
            rows.append(
                PreferenceExample(
                    rng.choice(prompts),
                    chosen,
                    rejected,
                    label=label,
                    subset=f"{a}>{b}",
                    origin=f"game:{game.name}:{a}>{b}#{k}",
                )
            )
    rng.shuffle(rows)
    return rows


PET_PROMPTS = (
    "Which pet would you choose: a cat, a dog or a fish?\nAnswer: I would choose a",
    "Which would you rather have as a pet, a fish, a dog or a cat?\nAnswer: I would rather have a",
    "I can adopt a dog, a cat or a fish. Which one should I take?\nAnswer: Take the",
    "Your favourite pet among cat, dog and fish?\nAnswer: My favourite is the",
    "Fish, cat or dog: which pet do you want?\nAnswer: I want a",
    "What is the best pet: a dog, a cat or a fish?\nAnswer: The best pet is a",
    "Pick one animal: dog, fish or cat.\nAnswer: I pick the",
    "Cat, dog or fish? Pick one pet.\nAnswer: I pick the",
    "Choose a pet: cat, dog, or fish.\nAnswer: I would like a",
    "If you could have one pet, a fish, a cat or a dog, which would it be?\nAnswer: I would have a",
    "Name the pet you prefer: cat, dog or fish.\nAnswer: I prefer the",
    "Dog, fish, or cat? Answer with one word.\nAnswer:",
)
"""Paraphrases of one question (options in varied order), each ending with the start of an answer, given
to the policy as plain text (``PreferenceGame.chat`` false): SmolLM2-135M-Instruct then names one of
the three animals most of the time at temperature 1, with every option in its support (which
multiplicative weights need: a category that is never sampled cannot gain mass). Through its chat
template the same model answers something else about 80 % of the time. Ordered by how often π_0 names
no animal (measured, 32 samples each: 0–19 % for the first eight, 25–81 % for the last four), since
off-topic answers are hard to train away (each is a different text) and every 10 % of them adds
about 0.04 to the exploitability of an otherwise perfect mixture."""

OTHER_PETS = (
    "kitten", "kitty", "puppy", "doggy", "goldfish", "hamster", "rabbit", "bunny", "parrot", "turtle",
    "horse", "pony", "mouse",
)  # fmt: skip
"""Animals that are none of the three options, taught to the pets games' judges as ``other``: the ones a
reader takes for an option (kitty, doggy, goldfish) among them, since the rule does not."""

HELD_OUT_PETS = ("bird", "snake", "lizard", "ferret", "guinea pig", "cow")
"""Animals kept out of the judges' training, to check that they rank unseen animals as ``other`` too."""

GAMES = {
    "pets": PreferenceGame(
        "pets",
        ("cat", "dog", "fish"),
        (("dog", "cat", 0.9), ("fish", "dog", 0.9), ("cat", "fish", 0.9)),
        prompts=PET_PROMPTS,
        near_misses=OTHER_PETS,
        held_out_near_misses=HELD_OUT_PETS,
    ),
    "pets_weighted": PreferenceGame(
        "pets_weighted",
        ("cat", "dog", "fish"),
        (("dog", "cat", 0.9), ("fish", "dog", 0.8), ("cat", "fish", 0.7)),
        prompts=PET_PROMPTS,
        near_misses=OTHER_PETS,
        held_out_near_misses=HELD_OUT_PETS,
    ),
    "pets_skewed": PreferenceGame(
        "pets_skewed",
        ("cat", "dog", "fish"),
        (("dog", "cat", 0.7), ("fish", "dog", 0.8), ("cat", "fish", 0.9)),
        prompts=PET_PROMPTS,
        near_misses=OTHER_PETS,
        held_out_near_misses=HELD_OUT_PETS,
    ),
}
"""Built-in games: rock-paper-scissors on three pets (dog ≻ cat ≻ fish ≻ dog), every answer naming no
option losing to each option with P = 0.9. ``pets``: P(win) = 0.9 on every edge, Nash (⅓, ⅓, ⅓, 0).
``pets_weighted``: unequal payoffs (dog ≻ cat 0.9, fish ≻ dog 0.8, cat ≻ fish 0.7), Nash
(1/3, 2/9, 4/9, 0) over (cat, dog, fish, other): each option's weight is proportional to the payoff
P − ½ of the edge it is not part of (0.3 : 0.2 : 0.4). The weakest edge is 0.7: a judge that is off by
a few points still has the same cycle and an equilibrium near the oracle's. It happens to sit close to
what SmolLM2-135M-Instruct answers anyway (π_0 on the first pet prompts is 0.04 exploitable there), so
it cannot show a policy moving to its equilibrium. ``pets_skewed``: the same payoffs on other edges
(dog ≻ cat 0.7, fish ≻ dog 0.8, cat ≻ fish 0.9), Nash (1/3, 4/9, 2/9, 0): the animal π_0 names least
(dog, 0.12–0.22) must become the most played, and π_0 is 0.15 exploitable."""
