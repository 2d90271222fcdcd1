"""A policy's category distribution on a game's prompt, computed from its probabilities, not sampled.

``genpref bench nash`` answers in at most two tokens, so the probability of every category is a finite
sum over (first token, second token) pairs:

    π(c | x) = Σ_{t₁} π(t₁ | x) · Σ_{t₂} π(t₂ | x, t₁) · [category(decode(t₁ t₂)) = c],

with the text exactly as sampling produces it (decoded with special tokens skipped, an end-of-sequence
token ending the answer, whitespace stripped) and the game's text rule (:meth:`PreferenceGame.category`).
Measuring a policy on its N·K training samples adds up to ½/√(N·K) of noise (one standard deviation)
per category to every iterate (±0.06 at 64 samples), and because exploitability is a maximum, noise also raises it on
average. This sum has neither.

Two ways to get the probabilities: :func:`from_samples` reads them off the logits that sampling computed
anyway (``SamplingConfig.keep_logits``; no extra forward pass; the bench's way), and
:func:`category_distribution` runs the policy (two forward passes: the prompt, then its likeliest first
tokens as a batch). Both decode exactly the pairs that carry the probability and count the rest by a
rule (:func:`answer_tree_distribution`):

* first tokens that are not enumerated (not sampled, or beyond ``first_max``): their category is read
  off the first token alone (a tail first token, " goldfish", " snake", rarely names an option, and a
  second token rarely changes that);
* for each enumerated first token, second tokens outside the likeliest ``second_max`` and outside the
  tokens that name an option themselves: the category of the first token alone (correct unless the
  second token glues on to the first word: " cat" + "nip").

``resolved`` is the probability mass whose category was computed from the exact text; on SmolLM2 and the
pet prompts it is 0.95–0.98.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from genpref.errors import ConfigError


@dataclass(frozen=True)
class MeasureConfig:
    """How much of the two-token answer tree is enumerated exactly."""

    first_max: int = 64
    """:func:`category_distribution`: first tokens enumerated (the likeliest; one row of a batched forward
    pass each)."""
    first_mass: float = 0.999
    """:func:`category_distribution`: stop enumerating first tokens once this much probability is covered."""
    unsampled_max: int = 2
    """:func:`from_samples`: unsampled first tokens that name no option, run per prompt for their second
    token (on SmolLM2's pet prompts that is " pet", 0.6–4 % of the probability, half of it followed by an
    animal; the rest of the tail stays ``other`` whatever follows)."""
    unsampled_min: float = 0.005
    """:func:`from_samples`: ... if their probability is at least this."""
    second_max: int = 64
    """Second tokens decoded per first token (the likeliest), besides every option-naming token."""


@dataclass
class Measured:
    """One prompt's exact category distribution and how much of it was resolved from the full text."""

    distribution: np.ndarray
    """(C,) probability of each category, in ``game.categories`` order (sums to 1)."""
    resolved: float
    """Probability mass whose category was read off the exact two-token text (the rest: first token only)."""


class VocabularyCategories:
    """Each token's decoded text and category under ``game``, once per (tokenizer, game)."""

    def __init__(self, tokenizer, game, vocab_size: int) -> None:
        self.game, self.tokenizer = game, tokenizer
        n = min(len(tokenizer), vocab_size)
        texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=True)
        texts += [""] * (vocab_size - n)  # padded logits rows beyond the tokenizer: no text
        self.category = self._categories(texts)  # (V,)
        self.names_option = torch.tensor([bool(game.named(t)) for t in texts])  # (V,)
        self.eos = tokenizer.eos_token_id

    def pair_categories(self, first: int, seconds: torch.Tensor) -> torch.Tensor:
        """(n,) category index of the answer (first, seconds[i]) as sampling would decode it."""
        if first == self.eos:
            return torch.full_like(seconds, self.game.categories.index("other"))
        ids = [[first] if s == self.eos else [first, s] for s in seconds.tolist()]
        return self._categories(self.tokenizer.batch_decode(ids, skip_special_tokens=True))

    def _categories(self, texts: list[str]) -> torch.Tensor:
        """(n,) category index of each decoded answer, stripped as sampling strips it."""
        index = {c: i for i, c in enumerate(self.game.categories)}
        return torch.tensor([index[self.game.category(t.strip())] for t in texts])


@lru_cache(maxsize=8)
def _vocabulary(tokenizer, game, vocab_size: int) -> VocabularyCategories:
    return VocabularyCategories(tokenizer, game, vocab_size)


def answer_tree_distribution(
    vocab: VocabularyCategories, p1: torch.Tensor, firsts: torch.Tensor, p2: torch.Tensor, second_max: int
) -> Measured:
    """The category distribution of two-token answers from the first-token probabilities ``p1`` (V,) and
    the second-token probabilities ``p2`` (n, V) after each first token in ``firsts`` (n,): those pairs
    are decoded exactly (the likeliest ``second_max`` second tokens and every option-naming one), the
    rest of the probability keeps the category of its first token (module docstring)."""
    c = len(vocab.game.categories)
    result = torch.zeros(c, dtype=torch.float64).index_add_(0, vocab.category, p1)  # first-token guess
    option_ids = vocab.names_option.nonzero().squeeze(-1)
    eos = torch.tensor([] if vocab.eos is None else [vocab.eos], dtype=torch.long)
    resolved = 0.0
    for row, first in enumerate(firsts.tolist()):
        seconds = torch.cat([p2[row].topk(min(second_max, p2.shape[1])).indices, option_ids, eos]).unique()
        mass = p2[row, seconds]  # (m,) second-token probabilities decoded exactly
        exact = torch.zeros(c, dtype=torch.float64).index_add_(0, vocab.pair_categories(first, seconds), mass)
        result[vocab.category[first]] -= p1[first] * mass.sum()  # replace the first-token guess ...
        result += p1[first] * exact  # ... by the exact category of those pairs
        resolved += float(p1[first] * mass.sum())
    if vocab.eos is not None and int(vocab.eos) < len(p1) and int(vocab.eos) not in firsts.tolist():
        resolved += float(p1[vocab.eos])  # an empty answer is `other` whatever follows
    result = result.clamp_min(0)
    return Measured((result / result.sum()).numpy(), min(resolved, 1.0))


def from_samples(
    tokenizer,
    game,
    samples: list[list],
    lm=None,
    prompt_ids: list[list[int]] | None = None,
    config=None,
    max_new_tokens: int = 2,
) -> list[Measured]:
    """Each prompt's category distribution from its samples (``samples[i]``: prompt i's, generated with
    ``SamplingConfig.keep_logits`` at temperature 1): the generation already computed π(· | x) and
    π(· | x, t₁) for every sampled first token t₁. First tokens that were not sampled keep their
    first-token category, except the likeliest ones that name no option (" pet", whose second token is
    often " fish"): with ``lm`` and ``prompt_ids``, up to ``config.unsampled_max`` of those per prompt
    above ``config.unsampled_min`` probability get their second token from one batched forward pass.
    ``max_new_tokens`` 1: answers are one token, every first token's category is exact."""
    config = config or MeasureConfig()
    if any(not ss or any(s.logits is None for s in ss) for ss in samples):
        raise ConfigError(
            "measuring from samples needs their logits.\n  fix: SamplingConfig(keep_logits=True)"
        )
    p1s = [ss[0].logits[0].double().softmax(-1) for ss in samples]  # each (V,): π(t₁ | x)
    vocab = _vocabulary(tokenizer, game, p1s[0].shape[0])
    if max_new_tokens == 1:
        c = len(game.categories)
        return [
            Measured((torch.zeros(c, dtype=torch.float64).index_add_(0, vocab.category, p1)).numpy(), 1.0)
            for p1 in p1s
        ]
    seconds: list[dict[int, torch.Tensor]] = []
    for ss in samples:
        seconds.append({})
        for s in ss:
            if len(s.token_ids) >= 2 and s.token_ids[0] not in seconds[-1]:
                seconds[-1][s.token_ids[0]] = s.logits[1].double().softmax(-1)
    if lm is not None and prompt_ids is not None:
        other = game.categories.index("other")
        rows = []  # (prompt, first token) pairs to run
        for i, p1 in enumerate(p1s):
            candidates = (vocab.category == other) & (p1 >= config.unsampled_min)
            candidates[[t for t in seconds[i]] + ([vocab.eos] if vocab.eos is not None else [])] = False
            ids = candidates.nonzero().squeeze(-1)
            rows += [(i, int(t)) for t in ids[p1[ids].argsort(descending=True)][: config.unsampled_max]]
        for (i, t), p2 in zip(rows, _next_token_probs(lm, [prompt_ids[i] + [t] for i, t in rows])):
            seconds[i][t] = p2
    out = []
    for p1, second in zip(p1s, seconds):
        firsts = torch.tensor(list(second), dtype=torch.long)
        p2 = torch.stack(list(second.values())) if second else p1[None, :0]
        out.append(answer_tree_distribution(vocab, p1, firsts, p2, config.second_max))
    return out


@torch.inference_mode()
def _next_token_probs(lm, sequences: list[list[int]]) -> torch.Tensor:
    """(n, V) π(· | sequence) for each token sequence (one left-padded forward pass; (0, V) if none)."""
    if not sequences:
        return torch.zeros(0, 0, dtype=torch.float64)
    device = next(lm.parameters()).device
    width = max(len(s) for s in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, s in enumerate(sequences):
        ids[row, width - len(s) :], mask[row, width - len(s) :] = torch.tensor(s), 1
    position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
    was_training = lm.training
    lm.eval()
    out = lm(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=1,
    )
    lm.train(was_training)
    return out.logits[:, -1].double().softmax(-1).cpu()


@torch.inference_mode()
def category_distribution(
    lm, tokenizer, game, prompt_ids: list[int], config: MeasureConfig = MeasureConfig()
) -> Measured:
    """One prompt's category distribution of two-token answers from ``lm`` (a causal LM, temperature 1)
    on the tokenised prompt ``prompt_ids``, enumerating the likeliest ``config.first_max`` first tokens
    with two forward passes (the prompt, then those first tokens as a batch on its key/value cache)."""
    from transformers import DynamicCache

    device = next(lm.parameters()).device
    was_training = lm.training
    lm.eval()
    cache = DynamicCache(config=lm.config)
    out = lm(input_ids=torch.tensor([prompt_ids], device=device), past_key_values=cache, logits_to_keep=1)
    p1 = out.logits[0, -1].double().softmax(-1).cpu()  # (V,)
    order = p1.argsort(descending=True)
    covered = int((p1[order].cumsum(0) < config.first_mass).sum()) + 1
    firsts = order[: min(config.first_max, covered)]  # (n,)
    n = len(firsts)
    expanded = DynamicCache(config=lm.config)
    for layer, d in enumerate(cache.layers):  # the prompt's cache, once per enumerated first token
        expanded.update(d.keys.expand(n, -1, -1, -1), d.values.expand(n, -1, -1, -1), layer)
    out = lm(
        input_ids=firsts[:, None].to(device),
        position_ids=torch.full((n, 1), len(prompt_ids), device=device),
        past_key_values=expanded,
        logits_to_keep=1,
    )
    p2 = out.logits[:, -1].double().softmax(-1).cpu()  # (n, V)
    lm.train(was_training)
    vocab = _vocabulary(tokenizer, game, p1.shape[0])
    return answer_tree_distribution(vocab, p1, firsts, p2, config.second_max)
