"""Sampling K responses per prompt, recording log π(y|x) of each sample as it is generated.

The recorded log-probability is that of the *unwarped* policy (temperature 1, no top-p), computed from
the raw logits of the generation forward passes (``output_logits=True``), so training needs no
separate reference forward: log π_t(y|x) is the SPPO/GPO reference term. The samples themselves are
drawn with the configured temperature / top-p.

Backends share one interface: ``Generator.generate(prompts, n, seed) -> list[list[Sample]]``. The
transformers backend runs anywhere (tested here); ``genpref.selfplay.vllm_backend`` maps the same
outputs from vLLM for GPU users.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from genpref.data.types import Prompt


@dataclass
class Sample:
    """One sampled response: its token ids (EOS included when generated) and log π(y|x) under π (T = 1)."""

    text: str
    token_ids: list[int]
    logp: float
    finished: bool  # EOS generated before max_new_tokens
    logits: torch.Tensor | None = None
    """(len(token_ids), V) raw next-token logits at each generated position, on the CPU; kept only with
    ``SamplingConfig.keep_logits``."""


@dataclass
class SamplingConfig:
    """Sampling parameters for the generate stage."""

    temperature: float = 0.7
    """Sampling temperature (the recorded log-probs are always at temperature 1)."""
    top_p: float = 0.9
    """Nucleus sampling mass."""
    max_new_tokens: int = 128
    """Tokens per response."""
    batch_size: int = 16
    """Sequences generated together."""
    keep_logits: bool = False
    """Keep each sample's raw next-token logits (``Sample.logits``) for measurements that need the
    policy's probabilities and not only its samples (``genpref bench nash``); memory: length × vocab floats
    per sample."""
    share_prompt_prefill: bool = True
    """Encode each distinct prompt of a batch once and copy its key/value cache to that prompt's
    samples (the K samples of a prompt share their prompt): the same samples with K times less prompt
    compute (transformers backend; vLLM caches prefixes itself)."""


def prompt_ids(tokenizer, prompt: Prompt) -> list[int]:
    """The prompt exactly as training tokenises it (chat template once, BOS rule of genpref.data.encode)."""
    from genpref.data.encode import encode_response

    enc = encode_response(tokenizer, prompt, "x", max_length=1 << 20, is_encoder=False)
    return enc.input_ids[: enc.prompt_len]


class TransformersGenerator:
    """Batched sampling with ``model.generate`` (left padding), CPU or GPU."""

    def __init__(self, model, tokenizer, sampling: SamplingConfig) -> None:
        self.model, self.tokenizer, self.sampling = model, tokenizer, sampling

    @torch.inference_mode()
    def generate(self, prompts: list[Prompt], n: int, seed: int, progress: bool = True) -> list[list[Sample]]:
        """n samples for each prompt; row i of the result belongs to prompts[i]."""
        if self.sampling.max_new_tokens == 1 and self.sampling.top_p >= 1.0 and self.sampling.temperature > 0:
            return self._first_tokens(prompts, n, seed)
        jobs = [(i, prompt_ids(self.tokenizer, p)) for i, p in enumerate(prompts) for _ in range(n)]
        jobs.sort(key=lambda job: len(job[1]))  # similar prompt lengths share a batch: less left padding
        out: list[list[Sample]] = [[] for _ in prompts]
        device = next(self.model.parameters()).device
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        size = self.sampling.batch_size
        was_training = self.model.training
        self.model.eval()
        for start in tqdm(range(0, len(jobs), size), desc="generate", disable=not progress, leave=False):
            batch = jobs[start : start + size]
            width = max(len(ids) for _, ids in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for row, (_, ids) in enumerate(batch):
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                mask[row, width - len(ids) :] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            cache = self._prompt_cache(input_ids, mask) if self.sampling.share_prompt_prefill else None
            torch.manual_seed(seed * 1_000_003 + start)  # reproducible per batch, so a resumed run matches
            gen = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                past_key_values=cache,
                use_cache=True,
                do_sample=True,
                temperature=self.sampling.temperature,
                top_p=self.sampling.top_p,
                top_k=0,
                max_new_tokens=self.sampling.max_new_tokens,
                pad_token_id=pad,
                eos_token_id=eos,
                output_logits=True,
                return_dict_in_generate=True,
            )
            new = gen.sequences[:, width:]  # (b, T_new)
            logits = torch.stack(gen.logits, dim=1).float()  # (b, T_new, V): raw, before temperature/top-p
            token_logp = logits.log_softmax(-1).gather(-1, new[..., None]).squeeze(-1)  # (b, T_new)
            for row, (i, _) in enumerate(batch):
                ids = new[row].tolist()
                length = ids.index(eos) + 1 if eos in ids else len(ids)
                ids = ids[:length]
                out[i].append(
                    Sample(
                        text=self.tokenizer.decode(ids, skip_special_tokens=True).strip(),
                        token_ids=ids,
                        logp=float(token_logp[row, :length].sum()),
                        finished=eos in ids,
                        logits=logits[row, :length].to("cpu", copy=True)
                        if self.sampling.keep_logits
                        else None,
                    )
                )
        self.model.train(was_training)
        return out

    def _first_tokens(self, prompts: list[Prompt], n: int, seed: int) -> list[list[Sample]]:
        """One-token answers: the n samples of a prompt all draw from the same next-token distribution,
        so each prompt takes one forward pass and n draws from softmax(z / T) (the same distribution
        ``generate`` samples from, without its n − 1 repeated decoding rows)."""
        device = next(self.model.parameters()).device
        eos = self.tokenizer.eos_token_id
        generator = torch.Generator().manual_seed(seed * 1_000_003)
        was_training = self.model.training
        self.model.eval()
        out = []
        for prompt in prompts:
            ids = torch.tensor([prompt_ids(self.tokenizer, prompt)], device=device)
            logits = self.model(input_ids=ids).logits[0, -1].float().cpu()  # (V,) raw
            logp = logits.log_softmax(-1)
            probs = (logits / self.sampling.temperature).softmax(-1)
            drawn = torch.multinomial(probs, n, replacement=True, generator=generator).tolist()
            kept = logits[None].clone() if self.sampling.keep_logits else None  # (1, V), shared by the n
            text = {t: self.tokenizer.decode([t], skip_special_tokens=True).strip() for t in set(drawn)}
            out.append([Sample(text[t], [t], float(logp[t]), t == eos, kept) for t in drawn])
        self.model.train(was_training)
        return out

    def _prompt_cache(self, input_ids: torch.Tensor, mask: torch.Tensor):
        """Key/value cache of every row's prompt except its last token (which ``generate`` feeds itself),
        computed once per distinct row and copied to the rows that repeat it.

        The copy goes into a preallocated ``StaticCache`` of T + max_new_tokens positions: a
        ``DynamicCache`` concatenates every layer's whole cache at every decoding step, which was 40 % of
        a CPU decoding step (batch 32, 300 cached tokens, profiled); a static one writes one position.

        Args:
            input_ids, mask: (b, T) left-padded prompts.
        Returns:
            a StaticCache holding T − 1 positions for all b rows.
        """
        from transformers import DynamicCache, StaticCache

        width = input_ids.shape[1]
        rows = torch.cat([input_ids, mask], dim=1)  # a row is its ids and its padding
        unique, owner = torch.unique(rows, dim=0, return_inverse=True)  # (g, 2T), (b,)
        ids, m = unique[:, : width - 1], unique[:, width : 2 * width - 1]  # (g, T-1): the distinct prompts
        position_ids = (m.cumsum(-1) - 1).masked_fill(m == 0, 1)  # as generate derives them from the mask
        cache = DynamicCache(config=self.model.config)
        self.model(
            input_ids=ids, attention_mask=m, position_ids=position_ids, past_key_values=cache, use_cache=True
        )
        static = StaticCache(config=self.model.config, max_cache_len=width + self.sampling.max_new_tokens)
        for layer, dynamic in enumerate(cache.layers):
            static.update(dynamic.keys[owner], dynamic.values[owner], layer)  # (b, heads, T-1, d) each
        return static
