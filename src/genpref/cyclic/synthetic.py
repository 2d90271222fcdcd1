"""Offline cyclic preference text: aspect-rated responses whose *type* decides every comparison.

Real UltraFeedback aspect ratings are not available offline, so this module writes rows in the flat
aspect schema read by :mod:`genpref.cyclic.builder` (``{"prompt", "responses": [{"text", "ratings"}]}``)
with short templated prompts and responses whose four ratings are realised in the text by clear but
varied cues, three levels per aspect (low, mid, high):

* instruction following (1 / 3 / 5): every prompt asks the reply to start with a marker such as
  ``'Answer:'``; high starts with that marker, mid with a different marker, low with none (chit-chat);
* honesty (1 / 4 / 5): low makes false claims about itself ("I checked it myself, I guarantee"), mid
  hedges lightly ("I think"), high is open about its limits ("I can't verify this, but I believe");
* truthfulness (1 / 2 / 5): high states the topic's correct fact, mid the fact plus an invented detail
  ("as Napoleon proved in 1990"), low an absurd claim ("... is secretly made of blue cheese");
* helpfulness (1 / 3 / 5): high adds a concrete example, mid adds nothing, low a dismissive remark.

A *cyclic* prompt gets one response of each cycle type (order shuffled); the types' levels are::

    cycle_length=3      instruction  honesty  truthfulness  helpfulness
    T0                  low (1)      low (1)  high (5)      high (5)
    T1                  high (5)     high (5) low (1)       mid (3)
    T2                  mid (3)      mid (4)  mid (2)       low (1)

so T0 ≻ T1 (truthfulness, helpfulness), T1 ≻ T2 (instruction following, honesty, helpfulness) and
T2 ≻ T0 (instruction following, honesty). No type dominates another, and in every leave-one-out
dataset the strongest cycle (builder rule 3) is the same T0 ≻ T1 ≻ T2 ≻ T0 for every prompt, with a
unique assignment of criteria: like rock-paper-scissors, the winner is a function of the two types.
(The rating values were chosen by exhaustive search for exactly this property.)

``cycle_length=4`` uses four types in a 4×4 circulant (Latin-square rotation): criterion j (in
:data:`~genpref.cyclic.builder.CRITERIA` order) rates T_j high, T_{j+1} and T_{j+3} mid and T_{j+2} low
(indices mod 4), so each type is high on one criterion, low on one and mid on two. Built with
``cycle_length=4``, each leave-one-out dataset holds one 4-cycle through all four types per prompt,
the same cycle and deciding criteria for every prompt of that dataset (which cycle depends on the
criterion left out); the BT ceiling is 3/4. With 3-cycles, extra responses (``responses_per_prompt``
above 3) repeat random types with fresh wording: they tie with their twin on every criterion, and the
builder still finds the same type-level cycle. 4-cycles take exactly 4 responses: with a repeated
type, 4-cycles through both twins (T1 ≻ T3 ≻ T2 ≻ T3' ≻ T1) would tie with the intended one.

A *transitive* prompt (a ``1 - cyclic_fraction`` share) gets types all-high, all-mid and all-low, totally
ordered on every criterion. The type of a response is recognisable from its text alone, across
prompts and topics, so a model trained on some prompts can generalise to held-out ones.
"""

from __future__ import annotations

import json
import random
from typing import Any

from genpref.cyclic.builder import CRITERIA, build_cyclic
from genpref.data.types import PreferenceExample

LEVELS = {
    "instruction_following": (1, 3, 5),
    "honesty": (1, 4, 5),
    "truthfulness": (1, 2, 5),
    "helpfulness": (1, 3, 5),
}
"""Rating of each level (low, mid, high) per criterion, on UltraFeedback's 1-5 scale."""
CYCLE_TYPES = {
    3: ((0, 0, 2, 2), (2, 2, 0, 1), (1, 1, 1, 0)),
    4: ((2, 1, 0, 1), (1, 2, 1, 0), (0, 1, 2, 1), (1, 0, 1, 2)),
}
"""Cycle length → level (0 low, 1 mid, 2 high) of each type on each criterion, in CRITERIA order."""
TRANSITIVE_TYPES = ((2, 2, 2, 2), (1, 1, 1, 1), (0, 0, 0, 0))

TOPICS = (  # (subject, question, correct fact, concrete example)
    ("the Moon", "How long does the Moon take to orbit us?", "the Moon orbits the Earth every 27 days", "full moons come about monthly"),
    ("water", "At what temperature does water boil?", "water boils at 100 degrees Celsius", "a kettle clicks off then"),
    ("photosynthesis", "What does photosynthesis produce?", "photosynthesis makes sugar and oxygen from light and water", "pond plants in sunlight give off bubbles"),
    ("the Eiffel Tower", "Where is the Eiffel Tower?", "the Eiffel Tower stands in Paris", "you can see it from the river Seine"),
    ("the heart", "What does the human heart do?", "the heart pumps blood around the body", "your pulse is each heartbeat"),
    ("the Pacific Ocean", "Which ocean is the largest?", "the Pacific is the largest ocean", "it covers about a third of the planet"),
    ("Mount Everest", "What is the highest mountain?", "Mount Everest is the highest mountain", "its peak is almost 9 km high"),
    ("the Sun", "What kind of object is the Sun?", "the Sun is a star", "its light reaches us in about 8 minutes"),
    ("a spider", "How many legs does a spider have?", "a spider has eight legs", "count four on each side"),
    ("ice", "Why does ice float?", "ice floats because it is less dense than water", "ice cubes rise to the top of a glass"),
    ("the piano", "How many keys does a piano have?", "a standard piano has 88 keys", "52 are white and 36 are black"),
    ("Shakespeare", "Who wrote Romeo and Juliet?", "Shakespeare wrote Romeo and Juliet", "it was first staged in the 1590s"),
    ("the compass", "Where does a compass needle point?", "a compass needle points to magnetic north", "turn it until the needle meets the N"),
    ("sound", "Is sound faster in air or in water?", "sound travels faster in water than in air", "whales hear each other from far away"),
    ("gold", "Does gold rust?", "gold does not rust", "ancient gold coins still shine"),
    ("a leap year", "How many days does a leap year have?", "a leap year has 366 days", "February gets a 29th day"),
    ("DNA", "What does DNA store?", "DNA stores genetic instructions", "it shapes traits like eye colour"),
    ("the Nile", "Which way does the Nile flow?", "the Nile flows north into the Mediterranean", "Cairo lies on its banks"),
    ("a triangle", "What is the angle sum of a triangle?", "the angles of a triangle sum to 180 degrees", "each equilateral angle is 60"),
    ("light", "How fast does light travel?", "light travels about 300,000 km per second", "it circles the Earth seven times a second"),
    ("bread", "What makes bread rise?", "bread rises because yeast makes carbon dioxide", "dough doubles in a warm room in an hour"),
    ("the Great Wall", "Where is the Great Wall?", "the Great Wall runs across northern China", "Badaling near Beijing is a popular section"),
    ("the penguin", "Can penguins fly?", "penguins cannot fly but swim very well", "they use their wings as flippers"),
    ("chess", "How many squares does a chessboard have?", "a chessboard has 64 squares", "it is an eight by eight grid"),
    ("the blue whale", "What is the largest animal?", "the blue whale is the largest animal", "it can reach 30 metres"),
    ("Tokyo", "What is the capital of Japan?", "Tokyo is the capital of Japan", "the busy Shibuya crossing is there"),
    ("vitamin C", "Which fruits are rich in vitamin C?", "citrus fruits like oranges are rich in vitamin C", "one orange covers most daily needs"),
    ("the thermometer", "What does a thermometer measure?", "a thermometer measures temperature", "a fever reads above 38 degrees Celsius"),
    ("the rainbow", "How many colours are in a rainbow?", "a rainbow is usually said to have seven colours", "red comes first and violet last"),
    ("the lung", "What do the lungs do?", "the lungs take oxygen into the blood", "a deep breath fills them with air"),
)  # fmt: skip
PROMPT_OPENERS = ("", "Quick question: ", "I'm curious. ", "Hi! ")
FORMAT_REQUESTS = (
    "Start your reply with '{}'.",
    "Begin your answer with '{}'.",
    "Open your reply with '{}'.",
)
MARKERS = ("Answer:", "Reply:", "Summary:", "In short:")
CHATTER = ("Oh, fun one!", "Hmm, let me see.", "Okay, so.", "Right then.")  # ignores the format
HONESTY = (
    ("I checked it myself, I guarantee", "I saw it myself:", "As a top expert, I promise", "I measured it myself, and"),  # claims about itself
    ("I think", "Probably", "I'd say", "It seems"),  # light hedge
    ("I can't verify this, but I believe", "I may be wrong, but", "As far as I know,", "I can't check sources, but"),  # open about limits
)  # fmt: skip
INVENTED = (
    "as Napoleon proved in 1990",
    "found last Tuesday",
    "per a Mars study",
    "as robots noted",
)
ABSURD = (
    "{} is secretly made of blue cheese",
    "{} was invented by dolphins in 3021",
    "{} only exists on Tuesdays",
    "{} was discovered by a talking cat",
)
EXAMPLE_LEADS = ("For example, {}.", "For instance, {}.", "Concretely, {}.", "In practice, {}.")
DISMISSIVE = (
    "Look up the rest yourself.",
    "That is all I will say.",
    "Don't ask me for more.",
    "Figure out the rest.",
)


def _response(rng: random.Random, levels: tuple[int, ...], topic: tuple, marker: str) -> str:
    """One response whose instruction-following, honesty, truthfulness, helpfulness are ``levels``."""
    follows, honesty, truth, helpful = levels
    subject, _, fact, example = topic
    if truth == 2:
        claim = fact
    elif truth == 1:
        claim = f"{fact}, {rng.choice(INVENTED)}"
    else:
        claim = rng.choice(ABSURD).format(subject)
    text = f"{rng.choice(HONESTY[honesty])} {claim}."
    if follows == 2:
        text = f"{marker} {text}"
    elif follows == 1:
        text = f"{rng.choice([m for m in MARKERS if m != marker])} {text}"
    else:
        text = f"{rng.choice(CHATTER)} {text}"
    if helpful == 2:
        text += " " + rng.choice(EXAMPLE_LEADS).format(example)
    elif helpful == 0:
        text += " " + rng.choice(DISMISSIVE)
    return text


def _ratings(levels: tuple[int, ...]) -> dict[str, int]:
    return {c: LEVELS[c][level] for c, level in zip(CRITERIA, levels)}


def make_aspect_rated_rows(
    n_prompts: int,
    *,
    responses_per_prompt: int | None = None,
    cyclic_fraction: float = 1.0,
    cycle_length: int = 3,
    seed: int = 0,
) -> list[dict]:
    """``n_prompts`` deterministic rows in the flat aspect schema (see the module doc).

    ``responses_per_prompt`` defaults to ``cycle_length``.
    Each response also carries ``"type"`` (``"T0"``... for cycle types, ``"high"``/``"mid"``/``"low"``
    for transitive ones) and each row ``"cyclic"``; the builder ignores both.
    """
    if cycle_length not in CYCLE_TYPES:
        raise ValueError(f"cycle_length must be one of {sorted(CYCLE_TYPES)}, got {cycle_length}")
    responses_per_prompt = responses_per_prompt or cycle_length
    if responses_per_prompt < cycle_length:
        raise ValueError(f"responses_per_prompt ({responses_per_prompt}) < cycle_length ({cycle_length})")
    if cycle_length == 4 and responses_per_prompt > 4:
        raise ValueError("cycle_length=4 takes exactly 4 responses per prompt (see the module doc)")
    if not 0.0 <= cyclic_fraction <= 1.0:
        raise ValueError(f"cyclic_fraction must lie in [0, 1], got {cyclic_fraction}")
    rng = random.Random(seed)
    n_cyclic = round(cyclic_fraction * n_prompts)
    cyclic_flags = [True] * n_cyclic + [False] * (n_prompts - n_cyclic)
    rng.shuffle(cyclic_flags)
    rows = []
    for cyclic in cyclic_flags:
        topic = rng.choice(TOPICS)
        marker = rng.choice(MARKERS)
        prompt = f"{rng.choice(PROMPT_OPENERS)}{topic[1]} {rng.choice(FORMAT_REQUESTS).format(marker)}"
        if cyclic:
            types = [(f"T{i}", levels) for i, levels in enumerate(CYCLE_TYPES[cycle_length])]
        else:
            types = list(zip(("high", "mid", "low"), TRANSITIVE_TYPES))
        types += [rng.choice(types) for _ in range(responses_per_prompt - len(types))]
        rng.shuffle(types)
        responses, seen = [], set()
        for name, levels in types:
            text = _response(rng, levels, topic, marker)
            while text in seen:  # a repeated type needs different wording
                text = _response(rng, levels, topic, marker)
            seen.add(text)
            responses.append({"text": text, "ratings": _ratings(levels), "type": name})
        rows.append({"prompt": prompt, "responses": responses, "cyclic": cyclic})
    return rows


def make_cyclic_datasets(
    n_prompts: int, seed: int = 0, *, max_cycles_per_prompt: int | None = 1, **kwargs: Any
) -> dict[str, list[PreferenceExample]]:
    """Synthetic rows (:func:`make_aspect_rated_rows`, ``kwargs``) through the cyclic builder.

    Cyclic prompts give cycles; transitive prompts (``cyclic_fraction < 1``) give transitive triples,
    so the BT ceiling of a dataset moves from 2/3 (all cyclic) to 1 (none).
    """
    rows = make_aspect_rated_rows(n_prompts, seed=seed, **kwargs)
    return build_cyclic(
        rows,
        max_cycles_per_prompt=max_cycles_per_prompt,
        seed=seed,
        transitive_triples=True,
        cycle_length=kwargs.get("cycle_length", 3),
    ).datasets


def split_by_cycle(
    examples: list[PreferenceExample], eval_fraction: float, seed: int = 0
) -> tuple[list[PreferenceExample], list[PreferenceExample]]:
    """``(train, eval)`` split by whole prompts (so by whole cycles): no prompt lands in both.

    ``round(eval_fraction * number of prompts)`` prompts, drawn with ``seed``, go to eval; the order of
    the examples is kept within each split.
    """
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must lie in [0, 1], got {eval_fraction}")
    keys = list(dict.fromkeys(json.dumps(e.prompt, ensure_ascii=False) for e in examples))
    random.Random(seed).shuffle(keys)
    held_out = set(keys[: round(eval_fraction * len(keys))])
    train = [e for e in examples if json.dumps(e.prompt, ensure_ascii=False) not in held_out]
    evals = [e for e in examples if json.dumps(e.prompt, ensure_ascii=False) in held_out]
    return train, evals
