"""Preference data: loading, validation, normalisation and tokenisation."""

from genpref.data.types import Message, PreferenceExample, Prompt, RankingExample

__all__ = ["Message", "PreferenceExample", "Prompt", "RankingExample"]
