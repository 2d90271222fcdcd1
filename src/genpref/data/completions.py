"""Loading single-completion rows: SFT data and KTO's unpaired (prompt, completion, label) data.

Accepted rows (validated like preference rows: errors name file, line, field and the fix):

* ``{"prompt": str | messages, "completion": str | [assistant message], "label"?: bool}``
* ``{"messages": [..., {"role": "assistant", ...}]}``: the prompt is every message before the last
  assistant message, the completion is that message (conversational SFT).
* preference pairs ``{"prompt", "chosen", "rejected"}`` (any form ``load_preferences`` takes): for SFT
  the chosen side; for KTO both sides, chosen labelled desirable and rejected undesirable (``unpair``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genpref.data.load import (
    LoadReport,
    OnError,
    _Bad,
    _load,
    _preference_from_row,
    _prompt,
    _response,
    _split_conversation,
)
from genpref.data.types import CompletionExample, PreferenceExample


def normalise_completion(row: dict, origin: str = "") -> CompletionExample:
    if "messages" in row and "completion" not in row:
        if not isinstance(row["messages"], list):
            raise _Bad(f"expected a message list, got {type(row['messages']).__name__}", "messages")
        prompt, completion = _split_conversation(row["messages"], "messages")
    else:
        for key in ("prompt", "completion"):
            if key not in row:
                raise _Bad("missing field", key, 'add it, or give a "messages" conversation instead')
        prompt = _prompt(row["prompt"])
        completion, prefix = _response(row["completion"], "completion")
        if prefix is not None:
            raise _Bad("completion must be one assistant message", "completion")
    label = row.get("label")
    if label is not None and not isinstance(label, bool):
        raise _Bad(f"expected true or false, got {type(label).__name__}", "label", "KTO labels are booleans")
    return CompletionExample(prompt=prompt, completion=completion, label=label, origin=origin)


def _normalise_any(row: dict, origin: str) -> CompletionExample | list[CompletionExample]:
    if "chosen" in row or "rejected" in row:
        return unpair([_preference_from_row(row, origin)])
    return normalise_completion(row, origin)


def unpair(pairs: list[PreferenceExample]) -> list[CompletionExample]:
    """Each pair as two labelled completions: chosen desirable, rejected undesirable."""
    out = []
    for p in pairs:
        out.append(CompletionExample(p.prompt, p.chosen, True, p.origin + "#chosen"))
        out.append(CompletionExample(p.prompt, p.rejected, False, p.origin + "#rejected"))
    return out


def load_completions(
    source: Any,
    *,
    split: str = "train",
    on_error: OnError = "raise",
    rejects_path: str | Path | None = None,
    limit: int | None = None,
) -> LoadReport:
    """Single-completion rows (or pairs, unpaired) as ``CompletionExample``s."""
    report = _load(source, split, on_error, rejects_path, limit, _normalise_any)
    flat = []
    for ex in report.examples:
        flat.extend(ex if isinstance(ex, list) else [ex])
    report.examples = flat
    return report
