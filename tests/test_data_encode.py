"""Tests for genpref.data.encode: rendering, token layout, BOS/EOS handling and truncation."""

from __future__ import annotations

import copy

import pytest

from genpref.data.encode import (
    Encoded,
    Truncation,
    TruncationStats,
    encode_chosen_rejected,
    encode_pair_joint,
    encode_response,
    render_prompt,
    render_response,
)
from genpref.errors import ConfigError

SYSTEM = {"role": "system", "content": "You answer in one word."}
USER = {"role": "user", "content": "What is the capital of France?"}
BIG = 10**6  # a max_length that never truncates


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


# ---------------------------------------------------------------- plain format (no chat template)


def test_plain_format_exact_text(minilm_tokenizer):
    assert not minilm_tokenizer.chat_template
    text = render_prompt(minilm_tokenizer, [SYSTEM, USER])
    assert text == "System: You answer in one word.\n\nUser: What is the capital of France?\n\nAssistant: "
    assert render_response(minilm_tokenizer, [SYSTEM, USER], "Paris.") == "Paris."


def test_encoder_layout_cls_prompt_sep_response_sep(minilm_tokenizer):
    tok = minilm_tokenizer
    enc = encode_response(tok, [USER], "Paris.", max_length=BIG, is_encoder=True)
    prompt_ids = ids(tok, "User: What is the capital of France?\n\nAssistant: ")
    expected = [tok.cls_token_id, *prompt_ids, tok.sep_token_id, *ids(tok, "Paris."), tok.sep_token_id]
    assert enc == Encoded(expected, len(prompt_ids) + 2, False)
    assert enc.prompt_len == enc.input_ids.index(tok.sep_token_id) + 1
    assert (
        tok.decode(enc.input_ids)
        == "[CLS] user : what is the capital of france? assistant : [SEP] paris. [SEP]"
    )


# ---------------------------------------------------------------- chat template (SmolLM2)


def test_chat_template_applied_once(smollm_tokenizer):
    tok = smollm_tokenizer
    enc = encode_response(tok, [SYSTEM, USER], "Paris.", max_length=BIG, is_encoder=False)
    text = tok.decode(enc.input_ids)
    assert text.count("<|im_start|>assistant") == 1
    assert text.count(SYSTEM["content"]) == 1
    assert "SmolLM" not in text  # the template's default system prompt is not added on top of ours
    assert text == (
        "<|im_start|>system\nYou answer in one word.<|im_end|>\n<|im_start|>user\n"
        "What is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>"
    )


def test_prompt_part_decodes_to_rendered_prompt_and_eos_is_last_once(smollm_tokenizer):
    tok = smollm_tokenizer
    enc = encode_response(tok, [USER], "Paris.", max_length=BIG, is_encoder=False)
    assert tok.decode(enc.input_ids[: enc.prompt_len]) == render_prompt(tok, [USER])
    assert render_prompt(tok, [USER]).endswith("<|im_start|>assistant\n")
    assert render_response(tok, [USER], "Paris.") == "Paris.<|im_end|>"
    assert enc.input_ids[-1] == tok.eos_token_id and enc.input_ids[-2] != tok.eos_token_id


def test_prompt_ids_identical_for_chosen_and_rejected(smollm_tokenizer):
    tok = smollm_tokenizer
    chosen = encode_response(tok, [SYSTEM, USER], "Paris.", max_length=BIG, is_encoder=False)
    rejected = encode_response(
        tok, [SYSTEM, USER], "It is Berlin, of course.", max_length=BIG, is_encoder=False
    )
    assert chosen.prompt_len == rejected.prompt_len
    assert chosen.input_ids[: chosen.prompt_len] == rejected.input_ids[: rejected.prompt_len]
    assert chosen.input_ids[chosen.prompt_len :] != rejected.input_ids[rejected.prompt_len :]


def test_standard_prompt_verbatim_and_eos_appended(smollm_tokenizer):
    tok = smollm_tokenizer
    prompt = "\n\nHuman: Capital of France?\n\nAssistant:"
    enc = encode_response(tok, prompt, " Paris.", max_length=BIG, is_encoder=False)
    assert enc.input_ids == [*ids(tok, prompt), *ids(tok, " Paris."), tok.eos_token_id]
    assert enc.prompt_len == len(ids(tok, prompt))


def test_bos_added_only_when_tokenizer_adds_it_and_never_doubled(smollm_tokenizer):
    """SmolLM2's bos_token is <|im_start|>, which its tokenizer never adds: plain text gets no BOS.

    A copy told to add BOS gets exactly one BOS on plain text, and still one (the template's own)
    on a chat prompt whose text already starts with the BOS token.
    """
    tok = smollm_tokenizer
    bos = tok.bos_token_id
    plain = encode_response(tok, "Q: hi\nA:", " yes", max_length=BIG, is_encoder=False)
    assert plain.input_ids[0] != bos
    with_bos = copy.deepcopy(tok)
    with_bos.add_bos_token = True
    assert with_bos.encode("a")[0] == bos
    plain = encode_response(with_bos, "Q: hi\nA:", " yes", max_length=BIG, is_encoder=False)
    assert plain.input_ids[:2] == [bos, ids(tok, "Q")[0]] and plain.prompt_len == 1 + len(
        ids(tok, "Q: hi\nA:")
    )
    chat = encode_response(with_bos, [USER], "Paris.", max_length=BIG, is_encoder=False)
    assert chat.input_ids[0] == bos and chat.input_ids[1] != bos
    assert (
        chat.input_ids == encode_response(tok, [USER], "Paris.", max_length=BIG, is_encoder=False).input_ids
    )


class _RewritingTemplate:
    """A stand-in tokenizer whose template output for the full conversation does not extend the prompt's."""

    chat_template = "x"
    eos_token = "</s>"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        return "PROMPT>" if add_generation_prompt else "REWRITTEN " + messages[-1]["content"]


def test_response_falls_back_to_text_plus_eos_when_template_rewrites_history():
    assert render_response(_RewritingTemplate(), [USER], "Paris.") == "Paris.</s>"


# ---------------------------------------------------------------- truncation


def test_truncation_cuts_prompt_left_then_response_right(smollm_tokenizer):
    """max_length 64 with a 1-token head (template BOS) and 1-token tail (EOS): budget B = 62.

    The prompt and response are both far longer than B, so the prompt keeps B // 4 = 15 tokens
    (its last ones) and the response its first 62 - 15 = 47 tokens, then EOS.
    """
    tok = smollm_tokenizer
    prompt = [{"role": "user", "content": "Tell me about Paris. " * 30}]
    response = "Paris is a large city with many museums and parks. " * 20
    full = encode_response(tok, prompt, response, max_length=BIG, is_encoder=False)
    cut = encode_response(tok, prompt, response, max_length=64, is_encoder=False)
    assert len(cut.input_ids) == 64 and cut.truncated and not full.truncated
    assert cut.prompt_len == 1 + 15
    assert cut.input_ids[0] == full.input_ids[0] == tok.bos_token_id
    assert cut.input_ids[1 : cut.prompt_len] == full.input_ids[full.prompt_len - 15 : full.prompt_len]
    assert cut.input_ids[cut.prompt_len : -1] == full.input_ids[full.prompt_len : full.prompt_len + 47]
    assert cut.input_ids[-1] == tok.eos_token_id


def test_long_prompt_short_response_keeps_whole_response(smollm_tokenizer):
    tok = smollm_tokenizer
    prompt = "Some context. " * 100
    full = encode_response(tok, prompt, " Yes.", max_length=BIG, is_encoder=False)
    cut = encode_response(tok, prompt, " Yes.", max_length=32, is_encoder=False)
    response_len = len(full.input_ids) - full.prompt_len  # response and EOS
    assert len(cut.input_ids) == 32 and cut.prompt_len == 32 - response_len
    assert cut.input_ids[cut.prompt_len :] == full.input_ids[full.prompt_len :]
    assert (
        cut.input_ids[: cut.prompt_len] == full.input_ids[full.prompt_len - cut.prompt_len : full.prompt_len]
    )


def test_encoder_truncation_keeps_cls_and_both_seps(minilm_tokenizer):
    tok = minilm_tokenizer
    cut = encode_response(tok, "word " * 100, "answer " * 100, max_length=40, is_encoder=True)
    assert len(cut.input_ids) == 40 and cut.truncated
    assert cut.input_ids[0] == tok.cls_token_id and cut.input_ids[-1] == tok.sep_token_id
    assert cut.input_ids.count(tok.sep_token_id) == 2
    assert cut.prompt_len == cut.input_ids.index(tok.sep_token_id) + 1 == 1 + (37 // 4) + 1


def test_drop_returns_none_only_when_too_long(minilm_tokenizer):
    tok = minilm_tokenizer
    assert (
        encode_response(tok, "q " * 50, "a", max_length=20, truncation=Truncation.DROP, is_encoder=True)
        is None
    )
    short = encode_response(tok, "q", "a", max_length=20, truncation="drop", is_encoder=True)
    assert short == encode_response(tok, "q", "a", max_length=20, is_encoder=True)


def test_chosen_rejected_share_prompt_tokens_under_truncation(smollm_tokenizer):
    tok = smollm_tokenizer
    prompt = [{"role": "user", "content": "Describe the weather today. " * 20}]
    chosen, rejected = encode_chosen_rejected(
        tok, prompt, "Sunny.", "It is raining heavily everywhere. " * 20, max_length=48, is_encoder=False
    )
    assert chosen.input_ids[: chosen.prompt_len] == rejected.input_ids[: rejected.prompt_len]
    assert len(rejected.input_ids) == 48 and len(chosen.input_ids) < 48
    assert chosen.input_ids[chosen.prompt_len :] == [*ids(tok, "Sunny.<|im_end|>")]
    assert (
        encode_chosen_rejected(
            tok, prompt, "a", "b " * 50, max_length=48, truncation="drop", is_encoder=False
        )
        is None
    )


def test_max_length_too_small_is_a_config_error(minilm_tokenizer):
    with pytest.raises(ConfigError, match="max_length=4"):
        encode_response(minilm_tokenizer, "q", "a", max_length=4, is_encoder=True)


def test_truncation_stats_counts():
    stats = TruncationStats()
    for result in (Encoded([1], 1, False), Encoded([1], 1, True), None, Encoded([1], 1, False)):
        stats.add(result)
    assert (stats.n_total, stats.n_truncated, stats.n_dropped) == (4, 1, 1)
    assert stats.summary() == "4 sequences: 1 truncated, 1 dropped (50.0% over max_length)"


# ---------------------------------------------------------------- PairPM joint input


def test_pair_joint_layout_encoder(minilm_tokenizer):
    tok = minilm_tokenizer
    enc = encode_pair_joint(tok, [USER], "Paris.", "Berlin.", max_length=BIG, is_encoder=True)
    assert tok.decode(enc.input_ids) == (
        "[CLS] user : what is the capital of france? assistant : [SEP] "
        "response a : paris. response b : berlin. [SEP]"
    )
    assert enc.prompt_len == enc.input_ids.index(tok.sep_token_id) + 1


def test_pair_joint_layout_decoder(smollm_tokenizer):
    tok = smollm_tokenizer
    enc = encode_pair_joint(tok, [USER], "Paris.", "Berlin.", max_length=BIG, is_encoder=False)
    expected = render_prompt(tok, [USER]) + "\n\nResponse A:\nParis.\n\nResponse B:\nBerlin.<|im_end|>"
    assert tok.decode(enc.input_ids) == expected
    assert tok.decode(enc.input_ids[: enc.prompt_len]) == render_prompt(tok, [USER])


def test_pair_joint_truncation_splits_budget_between_responses(minilm_tokenizer):
    """max_length 60; fixed = CLS + SEP + SEP + the two headers; B = 60 - fixed.

    Prompt, a and b are all long, so the prompt keeps B // 4 and a, b get half each of the rest.
    """
    tok = minilm_tokenizer
    header_len = len(ids(tok, "\n\nResponse A:\n")) + len(ids(tok, "\n\nResponse B:\n"))
    budget = 60 - 3 - header_len
    enc = encode_pair_joint(tok, "p " * 100, "a " * 100, "b " * 100, max_length=60, is_encoder=True)
    assert len(enc.input_ids) == 60 and enc.truncated and enc.input_ids[-1] == tok.sep_token_id
    assert enc.prompt_len == 1 + budget // 4 + 1
    a_id, b_id = ids(tok, "a")[0], ids(tok, "b")[0]  # "response a :" holds one of each (BERT lower-cases)
    n_a, n_b = enc.input_ids.count(a_id) - 1, enc.input_ids.count(b_id) - 1
    rest = budget - budget // 4
    assert (n_a, n_b) == (rest // 2, rest - rest // 2)
    short = encode_pair_joint(tok, "p " * 100, "a", "b " * 100, max_length=60, is_encoder=True)
    assert short.input_ids.count(a_id) - 1 == 1  # the short response is kept whole
    assert short.input_ids.count(b_id) - 1 == rest - 1  # and gives its unused share to b
