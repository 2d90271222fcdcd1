"""Tests for genpref.data.synthetic: determinism, validity, correctness of chosen, length balance."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from genpref.data.load import load_preferences
from genpref.data.synthetic import ANIMAL_SOUNDS, CAPITALS, TIPS, make_synthetic_preferences, write_jsonl
from genpref.data.types import PreferenceExample


def test_deterministic_per_seed():
    assert make_synthetic_preferences(50, seed=3) == make_synthetic_preferences(50, seed=3)
    assert make_synthetic_preferences(50, seed=3) != make_synthetic_preferences(50, seed=4)
    assert make_synthetic_preferences(20) == make_synthetic_preferences(400)[:20]  # a prefix is stable


def test_size_subsets_and_conversational_prompts():
    examples = make_synthetic_preferences(400)
    assert len(examples) == 400
    assert Counter(e.subset for e in examples) == {
        "capitals": 100,
        "animals": 100,
        "arithmetic": 100,
        "tips": 100,
    }
    assert all(e.conversational and e.prompt[-1]["role"] == "user" for e in examples)
    n_system = sum(e.prompt[0]["role"] == "system" for e in examples)
    assert 60 <= n_system <= 140  # about a quarter
    assert [e.origin for e in examples[:2]] == ["synthetic:1", "synthetic:2"]


def test_chosen_answers_are_correct():
    for example in make_synthetic_preferences(400):
        question, chosen = example.prompt[-1]["content"], example.chosen
        if example.subset == "capitals":
            country = next(c for c in CAPITALS if c in question)
            assert chosen.startswith(f"The capital of {country} is {CAPITALS[country]}.")
        elif example.subset == "animals":
            animal = re.search(r"does a (\w+) make", question).group(1)
            assert chosen.startswith(f"A {animal} {ANIMAL_SOUNDS[animal]}.")
        elif example.subset == "arithmetic":
            a, op, b = re.search(r"What is (\d+) (plus|times) (\d+)\?", question).groups()
            value = int(a) + int(b) if op == "plus" else int(a) * int(b)
            assert chosen.startswith(f"{a} {op} {b} equals {value}.")
        else:
            topic = next(t for t in TIPS if t in question)
            assert chosen.startswith(TIPS[topic])
        assert example.chosen.strip() != example.rejected.strip()


def test_length_is_not_a_strong_cue():
    for seed in range(3):
        examples = make_synthetic_preferences(400, seed=seed)
        rejected_longer = sum(len(e.rejected) > len(e.chosen) for e in examples) / len(examples)
        assert 0.4 <= rejected_longer <= 0.6


def test_write_jsonl_round_trip(tmp_path):
    examples = make_synthetic_preferences(60, seed=1)
    examples.append(PreferenceExample("plain prompt", "yes", "no", label=0.7, margin=1.5, subset=None))
    path = write_jsonl(examples, tmp_path / "synthetic.jsonl")
    report = load_preferences(path)
    assert not report.rejected
    assert [replace(e, origin="") for e in report.examples] == [replace(e, origin="") for e in examples]
    assert report.examples[0].origin == "synthetic.jsonl:1"
