"""A small built-in preference set, generated deterministically, for when no real data is at hand.

Each example is a one-turn conversational prompt (a quarter of them with a system message) from one
of four templated tasks (``subset``):

* ``capitals``: "What is the capital of France?"; ``animals``: "What sound does a cow make?";
* ``arithmetic``: "What is 12 plus 30?"; ``tips``: "Give me one tip for sleeping better.".

``chosen`` is a correct, on-topic, polite answer. ``rejected`` is one of: a *wrong* answer (for the
two factual tasks only, since a small encoder can learn which capital goes with which country but
not how to add), an *off-topic* answer (a correct answer to a different question), a *rude* reply,
or an *unhelpful* refusal. Both sides come in a short and a long form, chosen independently, so the
rejected response is the longer one in about half of the pairs and length alone predicts little.

The set is meant for smoke tests, examples and quick training runs of a small sentence encoder
(it is learnable in a few hundred steps); it says nothing about real preference data.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from genpref.data.load import write_records
from genpref.data.types import PreferenceExample

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "Canada": "Ottawa", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo",
    "Greece": "Athens", "Russia": "Moscow", "Ireland": "Dublin", "Portugal": "Lisbon",
    "Austria": "Vienna", "Thailand": "Bangkok", "Argentina": "Buenos Aires", "Poland": "Warsaw",
    "China": "Beijing", "Australia": "Canberra",
}  # fmt: skip
ANIMAL_SOUNDS = {
    "cow": "moos", "dog": "barks", "cat": "meows", "duck": "quacks", "lion": "roars",
    "horse": "neighs", "owl": "hoots", "frog": "croaks", "bee": "buzzes", "sheep": "bleats",
    "snake": "hisses", "pig": "oinks",
}  # fmt: skip
TIPS = {
    "sleeping better": "Go to bed at the same time every night and keep screens out of the bedroom.",
    "saving money": "Set aside a fixed part of every paycheck before you spend anything else.",
    "studying for an exam": "Test yourself with practice questions instead of rereading your notes.",
    "cooking pasta": "Salt the boiling water well and taste the pasta a minute before the package time.",
    "running a first 5k": "Alternate running and walking, and add a little more running each week.",
    "writing a clear email": "Put the request in the first sentence and keep the message short.",
    "keeping houseplants alive": "Water only when the top of the soil is dry, and give them bright light.",
    "learning a new language": "Practise a little every day and speak out loud, even to yourself.",
    "staying focused at work": "Work in blocks of about 25 minutes and silence notifications meanwhile.",
    "making new friends": "Join a club or class that meets regularly so you see the same people often.",
}
SYSTEM_PROMPT = "You are a helpful assistant."
CLOSERS = [
    "I hope this helps, and feel free to ask if you have any other questions.",
    "Let me know if you would like more detail on this.",
    "Thank you for the question, and have a wonderful day.",
]
RUDE_SHORT = ["Figure it out yourself.", "Ugh, not this again.", "Stop bothering me."]
RUDE_LONG = [
    "Honestly, that is such a basic question that I am not going to waste my time on it. Look it up "
    "on your own next time instead of bothering other people with it.",
    "Why would you even ask me something like that? Anyone with half a brain already knows, so stop "
    "being lazy and go find the answer yourself.",
]
UNHELPFUL_SHORT = ["I don't know.", "No idea, sorry.", "Can't say."]
UNHELPFUL_LONG = [
    "I am not really able to answer questions about {topic} right now, so you will have to ask "
    "someone else or try again some other time, maybe next week.",
    "That is a question about {topic}, and I would rather not get into it today. There are many "
    "other places where you could ask about it instead.",
]
SUBSETS = ("capitals", "animals", "arithmetic", "tips")


def _task(rng: random.Random, subset: str) -> tuple[str, str, str, str | None]:
    """``(question, correct answer, topic, wrong answer or None)`` for one templated task."""
    if subset == "capitals":
        country = rng.choice(sorted(CAPITALS))
        wrong = rng.choice([c for k, c in sorted(CAPITALS.items()) if k != country])
        question = rng.choice(
            ["What is the capital of {}?", "Which city is the capital of {}?", "Name the capital of {}."]
        ).format(country)
        return (
            question,
            f"The capital of {country} is {CAPITALS[country]}.",
            country,
            (f"The capital of {country} is {wrong}."),
        )
    if subset == "animals":
        animal = rng.choice(sorted(ANIMAL_SOUNDS))
        wrong = rng.choice([s for k, s in sorted(ANIMAL_SOUNDS.items()) if k != animal])
        question = rng.choice(["What sound does a {} make?", "What noise does a {} make?"]).format(animal)
        return question, f"A {animal} {ANIMAL_SOUNDS[animal]}.", f"{animal}s", f"A {animal} {wrong}."
    if subset == "arithmetic":
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        if rng.random() < 0.5:
            return f"What is {a} plus {b}?", f"{a} plus {b} equals {a + b}.", "arithmetic", None
        return f"What is {a} times {b}?", f"{a} times {b} equals {a * b}.", "arithmetic", None
    topic = rng.choice(sorted(TIPS))
    question = rng.choice(["Give me one tip for {}.", "What is a good tip for {}?"]).format(topic)
    return question, TIPS[topic], topic, None


def _maybe_long(rng: random.Random, text: str) -> str:
    return f"{text} {rng.choice(CLOSERS)}" if rng.random() < 0.5 else text


def _rejected(rng: random.Random, subset: str, topic: str, wrong: str | None) -> str:
    kinds = ["off_topic", "rude", "unhelpful"] + (["wrong", "wrong"] if wrong is not None else [])
    kind = rng.choice(kinds)
    long = rng.random() < 0.5
    if kind == "wrong":
        return _maybe_long(rng, wrong)
    if kind == "rude":
        return rng.choice(RUDE_LONG if long else RUDE_SHORT)
    if kind == "unhelpful":
        return rng.choice(UNHELPFUL_LONG).format(topic=topic) if long else rng.choice(UNHELPFUL_SHORT)
    other = rng.choice([s for s in SUBSETS if s != subset])
    _, answer, _, _ = _task(rng, other)
    return _maybe_long(rng, answer)


def make_synthetic_preferences(n: int = 400, seed: int = 0) -> list[PreferenceExample]:
    """``n`` deterministic preference pairs (same ``n`` and ``seed``, same list); see the module doc."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        subset = SUBSETS[i % len(SUBSETS)]
        question, answer, topic, wrong = _task(rng, subset)
        prompt = [{"role": "user", "content": question}]
        if rng.random() < 0.25:
            prompt.insert(0, {"role": "system", "content": SYSTEM_PROMPT})
        chosen = _maybe_long(rng, answer)
        rejected = _rejected(rng, subset, topic, wrong)
        examples.append(
            PreferenceExample(prompt, chosen, rejected, subset=subset, origin=f"synthetic:{i + 1}")
        )
    return examples


def write_jsonl(examples: Iterable[PreferenceExample], path: str | Path) -> Path:
    """Write examples in the explicit format (``prompt``/``chosen``/``rejected`` + optional fields).

    ``load_preferences(path)`` reads them back equal to the originals, except for ``origin``.
    """
    records = []
    for example in examples:
        record = {"prompt": example.prompt, "chosen": example.chosen, "rejected": example.rejected}
        if example.label != 1.0:
            record["prob"] = example.label
        if example.margin is not None:
            record["margin"] = example.margin
        if example.subset is not None:
            record["subset"] = example.subset
        records.append(record)
    return write_records(records, path)
