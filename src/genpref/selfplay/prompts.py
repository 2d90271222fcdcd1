"""Prompt sets for self-play: any dataset with prompts, plus a small built-in set.

Accepted rows: ``prompt`` (text or messages), ``messages`` (the conversation, ending with a user turn;
a trailing assistant turn is dropped), ``turns`` (MT-Bench: the first turn), ``instruction`` or
``question``. Rows without any of these stop with file, line and the fix.
"""

from __future__ import annotations

from genpref.data.types import Prompt
from genpref.errors import DataError

BUILTIN_PROMPTS = [
    "Give me three tips for staying focused while studying.",
    "Explain what a hash table is to a beginner programmer.",
    "Write a short, friendly email inviting a colleague to lunch.",
    "What are the main differences between a virus and a bacterium?",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "How do I make a simple tomato sauce?",
    "Suggest a name for a bakery that specialises in sourdough.",
    "Why is the sky blue? Answer in plain language.",
    "List four ways to reduce household energy use.",
    "Explain the difference between weather and climate.",
    "Write a haiku about autumn leaves.",
    "What should I pack for a two-day hiking trip?",
    "Describe how photosynthesis works in simple terms.",
    "Give an example of a good interview question for a software engineer.",
    "How can I politely decline a meeting invitation?",
    "What is the Pythagorean theorem and when is it used?",
    "Recommend a beginner-friendly exercise routine.",
    "Explain what inflation means for someone's savings.",
    "Write a two-sentence horror story.",
    "What are the benefits of learning a second language?",
    "How does a refrigerator keep food cold?",
    "Give me a quick recipe for a healthy breakfast.",
    "What is the difference between a list and a tuple in Python?",
    "Write a short motivational message for a friend starting a new job.",
    "Explain why we have seasons on Earth.",
    "How should I prepare for a job interview?",
    "Describe the water cycle in three steps.",
    "What are three common causes of stress at work, and how can they be managed?",
    "Translate 'Good morning, how are you?' into French and Spanish.",
    "Explain what a neural network is in one paragraph.",
    "Give me a fun fact about octopuses.",
    "How do I write a clear bug report?",
    "What is the capital of Australia, and why is it not Sydney?",
    "Suggest three board games for a family evening.",
    "Explain the rule of thirds in photography.",
    "What should I consider when adopting a dog?",
    "Write a limerick about a cat who loves coffee.",
    "How do vaccines train the immune system?",
    "Give me a plan to read more books this year.",
    "Explain recursion with a simple example.",
]


def prompt_from_row(row: dict, where: str) -> Prompt:
    if isinstance(row.get("prompt"), str | list) and row["prompt"]:
        return row["prompt"]
    if isinstance(row.get("messages"), list) and row["messages"]:
        messages = list(row["messages"])
        if messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        if messages:
            return messages
    if isinstance(row.get("turns"), list) and row["turns"] and isinstance(row["turns"][0], str):
        return row["turns"][0]
    for key in ("instruction", "question"):
        if isinstance(row.get(key), str) and row[key].strip():
            return row[key]
    raise DataError(
        "no prompt in this row",
        source=where.rsplit(":", 1)[0],
        line=int(where.rsplit(":", 1)[1]),
        fix="give each row a 'prompt' (text or messages), 'messages', 'turns' or 'instruction' field",
    )


BUILTIN_SETS = {
    "builtin": BUILTIN_PROMPTS,
    "builtin:train": BUILTIN_PROMPTS[:24],
    "builtin:eval": BUILTIN_PROMPTS[24:],
}
"""Built-in prompt sets: all 40, or disjoint halves for self-play training (24) and evaluation (16)."""


def load_prompts(source: str, limit: int | None = None, split: str = "train") -> list[Prompt]:
    """Prompts from a built-in set (``BUILTIN_SETS``) or any file / hub dataset the data layer reads."""
    if source in BUILTIN_SETS:
        prompts: list[Prompt] = list(BUILTIN_SETS[source])
    else:
        from genpref.data.readers import read_records

        prompts = [
            prompt_from_row(row, f"{name}:{line}") for name, line, row in read_records(source, split=split)
        ]
    if not prompts:
        raise DataError(
            "no prompts found", source=source, fix="point prompts.train / prompts.eval at a non-empty file"
        )
    return prompts[:limit] if limit else prompts


def fit_prompts(
    prompts: list[Prompt], tokenizer, max_tokens: int | None, limit: int | None, chat: bool = False
) -> tuple[list[Prompt], int]:
    """The first ``limit`` prompts whose tokenised length is at most ``max_tokens`` (measured as the
    policy sees them: as a user turn when ``chat``, see ``as_user_turn``).

    Returns:
        (kept prompts, number of prompts skipped for length before the limit was reached)
    """
    from genpref.selfplay.generate import prompt_ids

    kept: list[Prompt] = []
    skipped = 0
    for prompt in prompts:
        if limit and len(kept) == limit:
            break
        seen = as_user_turn(prompt) if chat else prompt
        if max_tokens is not None and len(prompt_ids(tokenizer, seen)) > max_tokens:
            skipped += 1
            continue
        kept.append(prompt)
    return kept, skipped


def as_user_turn(prompt: Prompt) -> Prompt:
    """A plain-text prompt as a one-message conversation (so the policy's chat template is applied);
    conversations are returned unchanged."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def with_instruction(prompt: Prompt, instruction: str) -> Prompt:
    """``prompt`` with ``instruction`` appended after a blank line (to the last user message of a
    conversation)."""
    if isinstance(prompt, str):
        return f"{prompt.rstrip()}\n\n{instruction}"
    messages = [dict(m) for m in prompt]
    for m in reversed(messages):
        if m.get("role") == "user":
            m["content"] = f"{str(m['content']).rstrip()}\n\n{instruction}"
            return messages
    return messages + [{"role": "user", "content": instruction}]
