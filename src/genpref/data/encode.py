"""Rendering prompts and responses to text, tokenising them, and truncating to ``max_length``.

This is genpref's documented text layout; training and inference both go through it, so a model
always sees the same tokens for the same example.

Rendering (:func:`render_prompt`, :func:`render_response`):

* standard prompt (a string): the prompt text is used verbatim and the response appended verbatim;
* conversational prompt, tokenizer **with** a chat template: ``prompt_text =
  apply_chat_template(prompt, add_generation_prompt=True)``; ``full = apply_chat_template(prompt +
  [assistant response])``; the response text is ``full[len(prompt_text):]`` with trailing whitespace
  removed (so it ends with the template's end-of-turn markup). If ``full`` does not start with
  ``prompt_text`` (templates that rewrite history), the response text is ``response + eos_token``.
  The template is applied exactly once; its text already carries any BOS it wants;
* conversational prompt, tokenizer **without** a chat template (the plain format): every message
  becomes ``"{Role}: {content}\\n\\n"`` with ``Role`` from :data:`PLAIN_ROLE_NAMES`, followed by the
  generation prompt ``"Assistant: "``; the response text is the response.

Token layout (:func:`encode_response`). Prompt and response are tokenised *separately* with
``add_special_tokens=False`` and concatenated, so the prompt tokens are identical for every response:

* decoders: ``[BOS] prompt response [EOS]``. BOS is prepended only when the tokenizer itself adds one
  (``tokenizer("a")`` starts with ``bos_token_id``, as for Llama) and the prompt text does not already
  start with the BOS token (a chat template that writes it); so BOS is never doubled, and a tokenizer
  whose ``bos_token`` is a chat control token it never adds (SmolLM2's ``<|im_start|>``) does not get
  it glued to plain text. EOS is appended unless the response already ends with it;
* encoders (BERT-like, ``is_encoder=True``): ``[CLS] prompt [SEP] response [SEP]`` from the
  tokenizer's ``cls_token_id`` / ``sep_token_id``. No ``token_type_ids`` are passed, so every token
  has segment id 0, as sentence-transformers encodes single texts (the built-in MiniLM was trained so).

``Encoded.prompt_len`` counts the leading prompt tokens (BOS/CLS, template tokens and the encoder's
first SEP included): ``input_ids[prompt_len - 1]`` is the last prompt token.

Truncation (``Truncation.TRUNCATE``), when the sequence exceeds ``max_length``: the special tokens
(BOS/CLS, SEP, the final EOS/SEP, the pair headers) are always kept. Of the remaining budget ``B``, the
prompt keeps its last ``max(B - len(response), B // 4)`` tokens (cut from the left; never more than it
has), and the response(s) get the rest, cut from the right. ``Truncation.DROP`` returns ``None``.
:func:`encode_chosen_rejected` cuts the prompt of both responses by the same amount.

Pairwise input (:func:`encode_pair_joint`, for PairPM): the prompt, then
``"\\n\\nResponse A:\\n" + a + "\\n\\nResponse B:\\n" + b``, then EOS (decoders) or SEP (encoders);
when truncating, each response gets half of the response budget (a shorter one gives its unused
half to the other).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from genpref.data.types import Prompt
from genpref.errors import ConfigError

PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_GENERATION_PROMPT = "Assistant: "
PAIR_HEADER_A = "\n\nResponse A:\n"
PAIR_HEADER_B = "\n\nResponse B:\n"


class Truncation(str, Enum):
    """What to do with a sequence longer than ``max_length``."""

    TRUNCATE = "truncate"
    DROP = "drop"


@dataclass(frozen=True)
class Encoded:
    """One tokenised model input."""

    input_ids: list[int]
    prompt_len: int
    """Number of leading prompt tokens (BOS/CLS and template tokens included)."""
    truncated: bool


@dataclass
class TruncationStats:
    """Counts of truncated and dropped sequences, for a one-line report after encoding a dataset."""

    n_total: int = 0
    n_truncated: int = 0
    n_dropped: int = 0

    def add(self, encoded: Encoded | None) -> None:
        """Count one result of an ``encode_*`` call (``None`` means dropped)."""
        self.n_total += 1
        if encoded is None:
            self.n_dropped += 1
        elif encoded.truncated:
            self.n_truncated += 1

    def summary(self) -> str:
        pct = 100.0 * (self.n_truncated + self.n_dropped) / max(self.n_total, 1)
        return (
            f"{self.n_total} sequences: {self.n_truncated} truncated, {self.n_dropped} dropped "
            f"({pct:.1f}% over max_length)"
        )


# ---------------------------------------------------------------- rendering


def _has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _plain_messages(messages: list) -> str:
    return "".join(f"{PLAIN_ROLE_NAMES[m['role']]}: {m['content']}\n\n" for m in messages)


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """The text preceding the response, generation prompt included."""
    if isinstance(prompt, str):
        return prompt
    if _has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return _plain_messages(prompt) + PLAIN_GENERATION_PROMPT


def render_response(tokenizer: Any, prompt: Prompt, response: str) -> str:
    """The text of the response part (with the chat template's end-of-turn markup, if any)."""
    if isinstance(prompt, str) or not _has_chat_template(tokenizer):
        return response
    prompt_text = render_prompt(tokenizer, prompt)
    full = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": response}], tokenize=False
    )
    if full.startswith(prompt_text):
        return full[len(prompt_text) :].rstrip()
    return response + (tokenizer.eos_token or "")


# ---------------------------------------------------------------- tokenising


def _ids(tokenizer: Any, text: str) -> list[int]:
    # verbose=False: the text is cut to max_length afterwards by the explicit truncation policy, so the
    # tokenizer's "sequence longer than the model maximum" warning would be misleading here
    return list(tokenizer.encode(text, add_special_tokens=False, verbose=False))


def _adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer's own ``tokenizer(text)`` call starts sequences with BOS."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    probe = tokenizer.encode("a", add_special_tokens=True)
    return len(probe) > 0 and probe[0] == bos


def _frame(
    tokenizer: Any, prompt_text: str, is_encoder: bool
) -> tuple[list[int], list[int], list[int], list[int]]:
    """``(head, prompt body, middle, tail)`` special-token framing around prompt and response."""
    prompt_ids = _ids(tokenizer, prompt_text)
    if is_encoder:
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        if cls is None or sep is None:
            raise ConfigError("is_encoder=True needs a tokenizer with cls_token_id and sep_token_id")
        return [cls], prompt_ids, [sep], [sep]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if eos is None:
        raise ConfigError("a decoder tokenizer needs an eos_token_id to mark the end of the response")
    head: list[int] = []
    if prompt_ids and prompt_ids[0] == bos:  # the chat template wrote BOS: keep it out of truncation
        head, prompt_ids = prompt_ids[:1], prompt_ids[1:]
    elif _adds_bos(tokenizer) and not prompt_text.startswith(tokenizer.bos_token):
        head = [bos]
    return head, prompt_ids, [], [eos]


def _split_budget(lengths: list[int], budget: int) -> list[int]:
    """Share ``budget`` tokens between pieces: equal shares, a short piece's unused share goes to the rest."""
    keep = [0] * len(lengths)
    remaining, left = budget, len(lengths)
    for i in sorted(range(len(lengths)), key=lambda k: lengths[k]):
        keep[i] = min(lengths[i], remaining // left)
        remaining -= keep[i]
        left -= 1
    return keep


def _assemble(
    head: list[int],
    prompt: list[int],
    middle: list[int],
    pieces: list[tuple[list[int], bool]],
    tail: list[int],
    *,
    max_length: int,
    truncation: Truncation,
    budget_response_len: int | None = None,
) -> Encoded | None:
    """Concatenate the parts, truncating per the module rules; pieces are ``(ids, may_cut)``."""
    fixed = len(head) + len(middle) + len(tail) + sum(len(ids) for ids, cut in pieces if not cut)
    n_cuttable = sum(1 for _, cut in pieces if cut)
    budget = max_length - fixed
    if budget < 1 + n_cuttable:
        raise ConfigError(f"max_length={max_length} leaves no room for text after {fixed} special tokens")
    response_len = sum(len(ids) for ids, cut in pieces if cut)
    needed = response_len if budget_response_len is None else budget_response_len
    truncated = len(prompt) + needed > budget
    if truncated and Truncation(truncation) is Truncation.DROP:
        return None
    if truncated:
        prompt = prompt[len(prompt) - min(len(prompt), max(budget - needed, budget // 4)) :]
        shares = iter(_split_budget([len(ids) for ids, cut in pieces if cut], budget - len(prompt)))
        pieces = [(ids[: next(shares)] if cut else ids, cut) for ids, cut in pieces]
    prompt_part = head + prompt + middle
    input_ids = prompt_part + [t for ids, _ in pieces for t in ids] + tail
    return Encoded(input_ids, len(prompt_part), truncated)


def _response_parts(tokenizer: Any, prompt: Prompt, response: str, is_encoder: bool) -> list[int]:
    """Response token ids without a trailing EOS/SEP (the tail adds it back)."""
    ids = _ids(tokenizer, render_response(tokenizer, prompt, response))
    end = tokenizer.sep_token_id if is_encoder else tokenizer.eos_token_id
    return ids[:-1] if ids and ids[-1] == end else ids


def encode_response(
    tokenizer: Any,
    prompt: Prompt,
    response: str,
    *,
    max_length: int,
    truncation: Truncation = Truncation.TRUNCATE,
    is_encoder: bool,
) -> Encoded | None:
    """Token ids of ``prompt`` followed by ``response``; ``None`` only when dropped (``DROP``)."""
    head, prompt_ids, middle, tail = _frame(tokenizer, render_prompt(tokenizer, prompt), is_encoder)
    response_ids = _response_parts(tokenizer, prompt, response, is_encoder)
    return _assemble(
        head, prompt_ids, middle, [(response_ids, True)], tail, max_length=max_length, truncation=truncation
    )


def encode_chosen_rejected(
    tokenizer: Any,
    prompt: Prompt,
    chosen: str,
    rejected: str,
    *,
    max_length: int,
    truncation: Truncation = Truncation.TRUNCATE,
    is_encoder: bool,
) -> tuple[Encoded, Encoded] | None:
    """Both responses of a pair, with identical prompt tokens even when truncating.

    The prompt is cut as :func:`encode_response` would cut it for the longer response. ``None`` when
    either sequence is too long under ``DROP``.
    """
    head, prompt_ids, middle, tail = _frame(tokenizer, render_prompt(tokenizer, prompt), is_encoder)
    responses = [_response_parts(tokenizer, prompt, text, is_encoder) for text in (chosen, rejected)]
    longest = max(len(ids) for ids in responses)
    encoded = [
        _assemble(
            head,
            prompt_ids,
            middle,
            [(ids, True)],
            tail,
            max_length=max_length,
            truncation=truncation,
            budget_response_len=longest,
        )
        for ids in responses
    ]
    if encoded[0] is None or encoded[1] is None:
        return None
    return encoded[0], encoded[1]


def encode_pair_joint(
    tokenizer: Any,
    prompt: Prompt,
    response_a: str,
    response_b: str,
    *,
    max_length: int,
    truncation: Truncation = Truncation.TRUNCATE,
    is_encoder: bool,
) -> Encoded | None:
    """The PairPM input ``(x, a, b)``: prompt, then both responses under ``Response A/B`` headers."""
    head, prompt_ids, middle, tail = _frame(tokenizer, render_prompt(tokenizer, prompt), is_encoder)
    pieces = [
        (_ids(tokenizer, PAIR_HEADER_A), False),
        (_ids(tokenizer, response_a), True),
        (_ids(tokenizer, PAIR_HEADER_B), False),
        (_ids(tokenizer, response_b), True),
    ]
    return _assemble(head, prompt_ids, middle, pieces, tail, max_length=max_length, truncation=truncation)


def warn_unknown_tokens(
    tokenizer: Any, rows: Iterable[tuple[str, Sequence[Encoded]]], what: str
) -> list[str]:
    """Origins of the rows whose tokens include the tokenizer's unknown token, with a warning.

    The text is kept as it is (never silently changed); the model just sees less of it. A WordPiece
    tokenizer (MiniLM) maps any word it cannot split to one ``[UNK]``, e.g. any unbroken run of more
    than 100 characters (a URL, base64, a long number), and characters missing from its vocabulary.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    special = {getattr(tokenizer, f"{n}_token_id", None) for n in ("eos", "bos", "pad", "sep", "cls")}
    if (
        unk is None or unk in special
    ):  # some decoders reuse <|endoftext|> as unk; byte-level BPE never emits it
        return []
    found = [origin for origin, seqs in rows if any(unk in s.input_ids for s in seqs)]
    if found:
        shown = ", ".join(o or "?" for o in found[:5]) + (", ..." if len(found) > 5 else "")
        logging.getLogger("genpref").warning(
            f"{what}: {len(found)} rows contain text the tokenizer maps to the unknown token "
            f"{tokenizer.unk_token!r} (rows {shown}); the model does not see that text. Typical causes: "
            "unbroken runs of over 100 characters (URLs, base64, long numbers) or characters outside the "
            "vocabulary; break or remove them if they matter"
        )
    return found
