"""Loading, validation and normalisation of preference and ranking data.

Sources: a local file (``.jsonl``, ``.jsonl.gz``, ``.json`` holding a list of objects, ``.parquet``,
``.csv``), a ``datasets.Dataset`` / ``DatasetDict`` / ``IterableDataset``, a list of dicts, or a
Hugging Face hub dataset name (``owner/name``, any string that is not an existing path).

Preference row formats, all normalised to :class:`~genpref.data.types.PreferenceExample`:

1. explicit standard: ``{"prompt": str, "chosen": str, "rejected": str}``;
2. explicit conversational: ``prompt`` a list of ``{"role", "content"}`` messages; ``chosen`` /
   ``rejected`` a string or a one-message list ``[{"role": "assistant", "content": ...}]`` (TRL style).
   A longer list is accepted when it is the whole conversation: its messages before the final
   assistant message must equal the prompt (a string prompt counts as one user message);
3. implicit standard (Anthropic HH-RLHF): no ``prompt``; ``chosen`` / ``rejected`` are whole dialogues
   ``"\\n\\nHuman: ... \\n\\nAssistant: ..."``. The prompt is the text up to and including the *last*
   ``"\\n\\nAssistant:"``; the response is the rest, kept verbatim (its leading space included), so
   ``prompt + response`` reproduces the original dialogue byte for byte and a decoder tokenises the
   response as it saw it in pre-training (``" Sure"``, not ``"Sure"``). The two prompts must match;
4. implicit conversational: ``chosen`` / ``rejected`` whole message lists ending with an assistant
   message; the prompt is every message before it and must match between the two.

Optional fields: ``prob`` (probability that chosen wins, in [0, 1]; becomes ``label``, default 1.0),
``margin`` (a finite number), ``subset`` (a string). Unknown fields are ignored.

Ranking rows ``{"prompt", "responses": [str | [assistant message]], "scores"?: [number]}`` (K >= 2)
normalise to :class:`~genpref.data.types.RankingExample`; ``genpref.data.rankings`` turns them into pairs.

Every bad row is a :class:`~genpref.errors.DataError` naming the source, line, field and a fix.
With ``on_error="skip"`` bad rows (including lines that are not valid JSON) are skipped and recorded;
problems with the file itself (missing, not UTF-8, not gzip, not parquet) always raise.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from genpref.atomic_io import atomic_write_jsonl
from genpref.data.readers import _BadRecord, _open
from genpref.data.types import Message, PreferenceExample, Prompt, RankingExample
from genpref.errors import DataError

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
TOOL_ROLES = ("tool", "function", "ipython")
MAX_FIELD_CHARS = 1_000_000
"""Longest text field accepted; anything longer is almost surely a broken row, not a long answer."""
ASSISTANT_MARKER = "\n\nAssistant:"
OnError = Literal["raise", "skip"]


@dataclass
class LoadReport:
    """What a load produced: the examples, and the rows it skipped with their reasons."""

    examples: list
    rejected: list[tuple[str, str]]
    """``(origin, reason)`` for each skipped row; ``origin`` is ``"<filename>:<line>"``."""
    n_read: int
    source: str
    rejects_path: str | None = None
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """``(origin, origin of the earlier identical row)`` for each kept row that repeats an earlier one."""

    def summary(self) -> str:
        text = f"read {self.n_read} rows from {self.source}: {len(self.examples)} kept"
        if self.duplicates:
            text += f" ({len(self.duplicates)} duplicates)"
        if self.rejected:
            text += f", {len(self.rejected)} skipped"
            if self.rejects_path:
                text += f" (see rejects file {self.rejects_path})"
        return text


class _Bad(Exception):
    """A validation failure inside one row; the loader adds source and line."""

    def __init__(self, message: str, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field, self.fix = message, field, fix


# ---------------------------------------------------------------- validating one row


def _require(row: dict, key: str) -> Any:
    if row.get(key) is None:
        raise _Bad(
            f"missing required field (row has: {', '.join(sorted(row)) or 'nothing'})",
            key,
            fix=f"add '{key}' to every row (see the README's Data section for the accepted forms)",
        )
    return row[key]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Bad(
            f"expected a string, got {type(value).__name__}", where, fix="quote the text as a JSON string"
        )
    if not value.strip():
        raise _Bad("is empty or whitespace-only", where, fix="fill in the text or remove the row")
    if len(value) > MAX_FIELD_CHARS:
        raise _Bad(
            f"is {len(value):,} characters, over genpref's limit of {MAX_FIELD_CHARS:,} (a corrupted or concatenated row?)",
            where,
            fix="split or remove the row; over-long but sane rows are truncated by model.max_length instead",
        )
    return value


def _message(value: Any, where: str) -> Message:
    fix = 'a message is {"role": "system" | "user" | "assistant", "content": str}'
    if not isinstance(value, dict):
        raise _Bad(f"expected a message dict, got {type(value).__name__}", where, fix)
    role, content = value.get("role"), value.get("content")
    if not isinstance(role, str) or not isinstance(content, str):
        raise _Bad("message needs string 'role' and 'content'", where, fix)
    if role in TOOL_ROLES:
        raise _Bad(
            f"'{role}' messages (tool calls and their results) are not supported",
            where,
            "convert each tool result into text of a neighbouring message, e.g. append "
            "'\\n\\n[tool result] ...' to the next user message, or drop the tool turns from the dataset",
        )
    if role not in ROLES:
        raise _Bad(f"unknown role '{role}'", where, fix)
    return {"role": role, "content": content}


def _messages(value: list, where: str) -> list[Message]:
    if not value:
        raise _Bad("is an empty message list", where)
    return [_message(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _prompt(value: Any, where: str = "prompt") -> Prompt:
    if isinstance(value, list):
        messages = _messages(value, where)
        if not any(m["content"].strip() for m in messages):
            raise _Bad("every message is empty", where)
        return messages
    return _text(value, where)


def _response(value: Any, where: str) -> tuple[str, list[Message] | None]:
    """Response text and, for a whole-conversation list, the messages before it."""
    if not isinstance(value, list):
        return _text(value, where), None
    messages = _messages(value, where)
    if messages[-1]["role"] != "assistant":
        fix = "the response must be one assistant message, or a conversation ending with one"
        raise _Bad("last message is not from the assistant", where, fix)
    return _text(messages[-1]["content"], where), (messages[:-1] or None)


def _merge_prompt(prompt: Prompt, prefix: list[Message] | None, where: str) -> Prompt:
    """Check a whole-conversation response against the explicit prompt; return the prompt to keep."""
    if prefix is None:
        return prompt
    as_messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    if prefix != as_messages:
        raise _Bad("the messages before the final assistant message differ from 'prompt'", where)
    return prefix


def _split_dialogue(text: Any, where: str) -> tuple[str, str]:
    text = _text(text, where)
    cut = text.rfind(ASSISTANT_MARKER)
    if cut < 0 and "\r\n\r\nAssistant:" in text:
        raise _Bad(
            "the dialogue has Windows line endings ('\\r\\n\\r\\nAssistant:'), so the '\\n\\nAssistant:' turn "
            "that splits off the prompt is not found",
            where,
            "convert the line endings inside the cells to '\\n' (e.g. pandas: df[col].str.replace('\\r\\n', "
            "'\\n'), or save the CSV with Unix line endings)",
        )
    if cut < 0 or not text[:cut].strip():
        fix = "add a 'prompt' field, or write the dialogue as '\\n\\nHuman: ...\\n\\nAssistant: ...'"
        raise _Bad("no prompt field and no '\\n\\nAssistant:' turn to split the prompt at", where, fix)
    cut += len(ASSISTANT_MARKER)
    if not text[cut:].strip():
        raise _Bad("the response after the last '\\n\\nAssistant:' is empty", where, "remove the row")
    return text[:cut], text[cut:]


def _split_conversation(value: list, where: str) -> tuple[list[Message], str]:
    response, prefix = _response(value, where)
    if prefix is None:
        raise _Bad("no prompt messages before the assistant reply", where, "add a 'prompt' field")
    return prefix, response


def _number(row: dict, key: str, default: float | None) -> float | None:
    value = row.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"expected a number, got {type(value).__name__}", key)
    if not math.isfinite(value):
        raise _Bad(f"must be finite, got {value}", key)
    return float(value)


def _is_whole_dialogue(value: Any) -> bool:
    """A response that carries its own prompt: a message list with a turn before the reply, or HH text."""
    if isinstance(value, list):
        return len(value) > 1
    return isinstance(value, str) and ("Assistant:" in value)


def _preference_from_row(row: dict, origin: str = "") -> PreferenceExample:
    """One raw row (any supported format) as a :class:`PreferenceExample`; raises ``_Bad``."""
    chosen_raw, rejected_raw = _require(row, "chosen"), _require(row, "rejected")
    if row.get("prompt") is not None:
        prompt = _prompt(row["prompt"])
        chosen, chosen_prefix = _response(chosen_raw, "chosen")
        rejected, rejected_prefix = _response(rejected_raw, "rejected")
        prompt = _merge_prompt(prompt, chosen_prefix, "chosen")
        prompt = _merge_prompt(prompt, rejected_prefix, "rejected")
    elif "prompt" in row and not _is_whole_dialogue(chosen_raw):
        raise _Bad(
            "is null and 'chosen' is not a whole dialogue to take the prompt from",
            "prompt",
            fix="fill in the prompt (text or messages); leave the field out only for HH-style rows whose "
            "chosen/rejected hold the whole '\\n\\nHuman: ...\\n\\nAssistant: ...' dialogue",
        )
    elif isinstance(chosen_raw, list) and isinstance(rejected_raw, list):
        prompt, chosen = _split_conversation(chosen_raw, "chosen")
        rejected_prompt, rejected = _split_conversation(rejected_raw, "rejected")
        if prompt != rejected_prompt:
            raise _Bad("prompts do not match (messages before the reply)", "chosen/rejected")
    elif isinstance(chosen_raw, list) or isinstance(rejected_raw, list):
        raise _Bad("without a prompt, chosen and rejected must both be text or both be message lists")
    else:
        prompt, chosen = _split_dialogue(chosen_raw, "chosen")
        rejected_prompt, rejected = _split_dialogue(rejected_raw, "rejected")
        if prompt != rejected_prompt:
            fix = "add an explicit 'prompt' field, or remove the row"
            raise _Bad(
                "prompts do not match (text up to the last '\\n\\nAssistant:')", "chosen/rejected", fix
            )
    if chosen.strip() == rejected.strip():
        raise _Bad(
            "chosen and rejected are identical", "rejected", fix="remove the row: it has no preference"
        )
    prob = _number(row, "prob", 1.0)
    if not 0.0 <= prob <= 1.0:
        raise _Bad(f"must lie in [0, 1], got {prob}", "prob", fix="prob is P(chosen wins), not a logit")
    subset = row.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise _Bad(f"expected a string, got {type(subset).__name__}", "subset")
    margin = _number(row, "margin", None)
    return PreferenceExample(prompt, chosen, rejected, prob, margin, subset, origin)


def _drop_empty_responses(row: dict) -> dict:
    """``row`` without its empty or whitespace-only responses (and their scores), if it has any."""
    raw, scores = row.get("responses"), row.get("scores")
    if not isinstance(raw, list):
        return row
    keep = [i for i, r in enumerate(raw) if not (isinstance(r, str) and not r.strip())]
    if len(keep) == len(raw):
        return row
    fixed = {**row, "responses": [raw[i] for i in keep]}
    if isinstance(scores, list) and len(scores) == len(raw):
        fixed["scores"] = [scores[i] for i in keep]
    return fixed


def _ranking_from_row(row: dict, origin: str = "", drop_empty: bool = False) -> RankingExample:
    """One raw ranking row as a :class:`RankingExample`; raises ``_Bad``."""
    if drop_empty:
        dropped = _drop_empty_responses(row)
        if dropped is not row:
            logger.info(
                "%s: dropped %d empty responses", origin, len(row["responses"]) - len(dropped["responses"])
            )
            row = dropped
    prompt = _prompt(_require(row, "prompt"))
    raw = _require(row, "responses")
    if not isinstance(raw, list) or len(raw) < 2:
        raise _Bad("expected a list of at least 2 responses", "responses")
    responses = []
    for i, value in enumerate(raw):
        text, prefix = _response(value, f"responses[{i}]")
        prompt = _merge_prompt(prompt, prefix, f"responses[{i}]")
        responses.append(text)
    scores = row.get("scores")
    if scores is not None:
        if not isinstance(scores, list) or len(scores) != len(responses):
            raise _Bad(f"expected a list of {len(responses)} numbers, one per response", "scores")
        scores = tuple(_number({"scores": s}, "scores", None) for s in scores)
    return RankingExample(prompt, tuple(responses), scores, origin)


# ---------------------------------------------------------------- loading whole sources


def write_records(records: Iterable[dict], path: str | Path) -> Path:
    """Write dicts as JSON Lines atomically (a temporary file, then ``os.replace``)."""
    return atomic_write_jsonl(path, records)


def _load(
    source: Any,
    split: str,
    on_error: OnError,
    rejects_path: str | Path | None,
    limit: int | None,
    normalise: Callable[[dict, str], Any],
) -> LoadReport:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    name, rows = _open(source, split)
    examples, rejected, reject_rows, n_read = [], [], [], 0
    for line, row in rows:
        if limit is not None and len(examples) >= limit:
            break
        n_read += 1
        origin = f"{name}:{line}"
        if isinstance(row, _BadRecord):
            error, raw = row.error, row.raw
        else:
            try:
                examples.append(normalise(row, origin))
                continue
            except _Bad as bad:
                error = DataError(bad.message, source=name, line=line, field=bad.field, fix=bad.fix)
                raw = row
        if on_error == "raise":
            raise error
        reason = error.message if error.field is None else f"{error.field}: {error.message}"
        rejected.append((origin, reason))
        reject_rows.append({"origin": origin, "reason": reason, "row": raw})
    if on_error == "skip" and rejects_path is not None:
        write_records(reject_rows, rejects_path)
    report = LoadReport(examples, rejected, n_read, name, None if rejects_path is None else str(rejects_path))
    report.duplicates = _duplicates(examples)
    if report.duplicates:
        shown = ", ".join(f"{o} (= {first})" for o, first in report.duplicates[:5])
        more = ", ..." if len(report.duplicates) > 5 else ""
        logger.warning(
            f"{name}: {len(report.duplicates)} rows repeat an earlier row exactly: {shown}{more}. They are "
            "kept (and weigh double in training and evaluation); deduplicate the file if that is unintended"
        )
    return report


def _duplicates(examples: list) -> list[tuple[str, str]]:
    """Kept rows equal to an earlier row in everything but their origin (a row normalised to a list of
    examples, as a pair read as two completions, counts each of them)."""
    first: dict[str, str] = {}
    found = []
    for ex in (e for row in examples for e in (row if isinstance(row, list) else [row])):
        content = {k: v for k, v in asdict(ex).items() if k != "origin"}
        key = json.dumps(content, sort_keys=True, default=str)
        if key in first:
            found.append((ex.origin, first[key]))
        else:
            first[key] = ex.origin
    return found


def load_preferences(
    source: Any,
    *,
    split: str = "train",
    on_error: OnError = "raise",
    rejects_path: str | Path | None = None,
    limit: int | None = None,
) -> LoadReport:
    """Load pairwise preference rows as :class:`PreferenceExample` s.

    Args:
        source: a file path, a ``datasets`` object, a list of dicts, or a hub dataset name.
        split: the split to take from a hub dataset or ``DatasetDict``.
        on_error: ``"raise"`` stops at the first bad row; ``"skip"`` skips and records bad rows.
        rejects_path: with ``"skip"``, write each skipped row here as JSONL ``{origin, reason, row}``.
        limit: stop after this many *kept* examples.
    """
    return _load(source, split, on_error, rejects_path, limit, _preference_from_row)


def load_rankings(
    source: Any,
    *,
    split: str = "train",
    on_error: OnError = "raise",
    rejects_path: str | Path | None = None,
    limit: int | None = None,
    drop_empty_responses: bool = False,
) -> LoadReport:
    """Load ranking rows (a prompt with K >= 2 responses) as :class:`RankingExample` s.

    Arguments as for :func:`load_preferences`, and ``drop_empty_responses``: remove empty or
    whitespace-only responses (with their scores) from a row instead of rejecting the row, logging
    each at INFO level (a failed answer among many graded ones; the row is still bad if fewer than 2
    responses remain).
    """

    def normalise(row: dict, origin: str) -> RankingExample:
        return _ranking_from_row(row, origin, drop_empty_responses)

    return _load(source, split, on_error, rejects_path, limit, normalise)
