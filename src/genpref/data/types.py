"""Canonical in-memory forms of preference rows.

Every input format (standard text or conversational messages, explicit or implicit prompt, files,
``datasets.Dataset`` objects, hub names) is normalised to these types by ``genpref.data.load``.
Downstream code (models, trainers, evaluation) sees only these.
"""

from __future__ import annotations

from dataclasses import dataclass

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

Prompt = str | list[Message]
"""A prompt: plain text (standard format) or the conversation before the response (conversational)."""


@dataclass(frozen=True)
class PreferenceExample:
    """One comparison: P(chosen ≻ rejected | prompt) = ``label``.

    ``chosen`` and ``rejected`` are the *response texts only* (the assistant turn); the prompt is
    never repeated inside them, whatever the input format was.
    """

    prompt: Prompt
    chosen: str
    rejected: str
    label: float = 1.0
    """Probability that ``chosen`` wins (1.0 for a hard label; a soft label lies in [0, 1])."""
    margin: float | None = None
    """Optional preference strength, in logit units (used by the margin loss)."""
    subset: str | None = None
    """Optional subset name (e.g. a RewardBench subset) for per-subset evaluation."""
    origin: str = ""
    """Where the row came from, e.g. ``"train.jsonl:12"``, for error messages and reject files."""

    @property
    def conversational(self) -> bool:
        return isinstance(self.prompt, list)


@dataclass(frozen=True)
class RankingExample:
    """One prompt with K ≥ 2 candidate responses (and optional per-response scores)."""

    prompt: Prompt
    responses: tuple[str, ...]
    scores: tuple[float, ...] | None = None
    origin: str = ""

    @property
    def conversational(self) -> bool:
        return isinstance(self.prompt, list)


@dataclass(frozen=True)
class BestOfNExample:
    """One prompt with chosen response(s) and several rejected ones (RewardBench 2's row layout).

    A judge is right on the row iff it puts every chosen response above every rejected one.
    """

    prompt: Prompt
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]
    subset: str | None = None
    origin: str = ""

    @property
    def conversational(self) -> bool:
        return isinstance(self.prompt, list)


@dataclass(frozen=True)
class CompletionExample:
    """One prompt with one completion: SFT data, or KTO's unpaired data with a desirability label."""

    prompt: Prompt
    completion: str
    label: bool | None = None
    """KTO: True for a desirable completion, False for an undesirable one; None for SFT rows."""
    origin: str = ""

    @property
    def conversational(self) -> bool:
        return isinstance(self.prompt, list)
