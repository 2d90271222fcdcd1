"""SmolLM2's special tokens are set explicitly (GGUF metadata is read differently across transformers
versions: 5.17 loaded EOS as <|im_start|> and no pad token)."""

from __future__ import annotations

from genpref.models.backbone import (
    SMOLLM_SPECIAL_TOKENS,
    load_tokenizer,
    resolve_backbone,
    set_smollm_special_tokens,
)


def test_builtin_smollm_has_its_own_special_tokens():
    path = resolve_backbone("smollm2-135m")
    tok = load_tokenizer(path)
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (
        "<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>",
    )  # fmt: skip
    assert tok("hi there")["input_ids"] == tok.convert_tokens_to_ids(["hi", "Ġthere"])  # no BOS/EOS added
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (
        tok.bos_token_id, tok.eos_token_id, tok.pad_token_id,
    )  # fmt: skip


def test_wrong_special_tokens_are_overwritten():
    from types import SimpleNamespace

    tok = load_tokenizer(resolve_backbone("smollm2-135m"))
    tok.eos_token, tok.pad_token = "<|im_start|>", None  # what transformers 5.17 produced
    config = SimpleNamespace()
    set_smollm_special_tokens(tok, config)
    assert {k: getattr(tok, k) for k in SMOLLM_SPECIAL_TOKENS} == SMOLLM_SPECIAL_TOKENS
    assert (config.eos_token_id, config.pad_token_id) == (tok.convert_tokens_to_ids("<|im_end|>"),) * 2
    assert config.bos_token_id == tok.convert_tokens_to_ids("<|im_start|>") != config.eos_token_id
