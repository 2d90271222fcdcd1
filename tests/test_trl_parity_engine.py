"""The policy log-prob engine (``completion_logps``) against TRL 1.16's ``DPOTrainer`` and against itself.

Parity with TRL, on a tiny random Llama (SmolLM2 tokenizer) and short standard-text pairs (prompt,
chosen and rejected are plain strings; nothing is truncated on either side):

(a) tokenisation: TRL's ``_prepare_dataset`` (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) against
    ``encode_chosen_rejected``. Both append EOS after the completion; neither adds BOS (the SmolLM2
    tokenizer does not add one). They differ in one documented way: TRL tokenises ``prompt + completion``
    as one string and starts the completion where that tokenisation leaves the prompt's, while genpref
    tokenises prompt and completion separately and concatenates. They agree whenever the boundary falls
    between tokens of the joint text; they differ when the prompt ends in whitespace that the joint
    tokenisation attaches to the completion's first word or splits differently (a trailing ``" "``
    before ``"def"`` becomes one ``" def"`` token; a trailing ``"\n\n"`` alone is one token, but
    ``"\n", "\n"`` before a word). TRL then drops the prompt's last token(s) and scores the boundary
    tokens as completion; genpref keeps the prompt's own tokens and scores the completion's own. The
    log-prob and loss checks below therefore run genpref on TRL's exact token ids.
(b) log-probs: TRL's summed completion log-probs (``DPOTrainer._compute_loss`` through its fused LM
    head, read from the ``logps/chosen`` and ``logps/rejected`` metrics of one-example batches) against
    ``completion_logps``, packed and padded.
(c) DPO loss: TRL's per-example loss, with a reference model that differs from the policy (the policy is
    the reference with perturbed weights, so the loss is not log 2), against ``dpo_loss`` on genpref's
    log-probs of both models.

TRL 1.16's ``DPOConfig`` defaults to ``bf16=True`` (and ``gradient_checkpointing=True``). With bf16 the
reference model, which ``DPOTrainer.__init__`` wraps with accelerate's autocast, runs in bf16 even when
the policy is called in fp32 (a 3e-4 nat difference per token on this model), so the trainer here is
built with ``bf16=False``.

Engine invariants (no TRL needed): packed equals padded and both equal a naive full-vocabulary
``log_softmax`` gathered on the completion tokens, for the values and for the gradients with respect
to every parameter; prompt tokens are never scored (token count = completion length).
"""

from __future__ import annotations

import importlib.util
import math
import tempfile

import pytest
import torch
from tiny_models import tiny_llama

from genpref.data.encode import Encoded, encode_chosen_rejected
from genpref.losses.policy import dpo_loss
from genpref.models.backbone import load_tokenizer
from genpref.policy.logprobs import completion_logps
from genpref.policy.sequences import make_batch

requires_trl = pytest.mark.skipif(
    importlib.util.find_spec("trl") is None,
    reason="trl (a dev dependency) is not installed: no reference to compare against",
)

RTOL = 1e-5
BETA = 0.1

# Standard text whose prompt/completion boundary falls between tokens: both tokenisations agree.
PAIRS = [
    {
        "prompt": "how to cook t-bone in the oven",
        "chosen": "To cook a steak, heat the oven.",
        "rejected": "No.",
    },
    {"prompt": "Question: what is 2+2?\n", "chosen": "Answer: 4.", "rejected": "Answer: 5, probably"},
    {"prompt": "Name a colour.", "chosen": " Blue.", "rejected": " A colour is a property of light."},
    {"prompt": "Write one word:", "chosen": " Hello", "rejected": " Hello there, how are you today?"},
]
# A prompt ending in a space: " def" is one token of the joint text, so the boundary is merged.
MERGED = {"prompt": "Continue the list: abc ", "chosen": "def", "rejected": "xyz and more"}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(tiny_llama())


def _load_llama():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama(), dtype=torch.float32).eval()


def _perturbed_llama(seed: int = 1, scale: float = 0.05):
    """The tiny Llama with Gaussian noise on every weight: a policy that differs from its reference."""
    model = _load_llama()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


def _encode(tokenizer, row) -> tuple[Encoded, Encoded]:
    chosen, rejected = encode_chosen_rejected(
        tokenizer, row["prompt"], row["chosen"], row["rejected"], max_length=4096, is_encoder=False
    )
    assert not (chosen.truncated or rejected.truncated)
    return chosen, rejected


def _logps(model, seqs: list[Encoded], packing: bool, pad_id: int, chunk: int = 1024):
    batch = make_batch(seqs, packing=packing, pad_id=pad_id)
    return completion_logps(model, **batch, chunk=chunk)


@pytest.fixture(scope="module")
def trl_run(tokenizer):
    """A real ``DPOTrainer`` on PAIRS + MERGED (no truncation), and its per-example outputs.

    Each example is its own batch so that the batch means TRL returns and logs are per-example values.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy, reference = _perturbed_llama(), _load_llama()
    args = DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="genpref-trl-"),
        max_length=None,  # no truncation, as genpref with a large max_length
        beta=BETA,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=False,  # the explicit ref_model runs in _compute_loss
        per_device_train_batch_size=1,
        bf16=False,  # TRL's default (True) would run the reference under bf16 autocast
        gradient_checkpointing=False,  # TRL's default is True; it does not change the values
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
    )
    rows = [*PAIRS, MERGED]
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.model.eval()
    out = {"rows": rows, "policy": policy, "reference": reference, "losses": [], "chosen": [], "rejected": [],
           "prompt_ids": [], "chosen_ids": [], "rejected_ids": []}  # fmt: skip
    metrics = trainer._metrics["eval"]  # the mode follows model.training
    for i in range(len(rows)):
        example = trainer.train_dataset[i]
        for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
            out[key].append(list(example[key]))
        with torch.no_grad():
            out["losses"].append(
                float(trainer._compute_loss(trainer.model, trainer.data_collator([example]), False))
            )
        out["chosen"].append(metrics["logps/chosen"][-1])
        out["rejected"].append(metrics["logps/rejected"][-1])
    for key in ("losses", "chosen", "rejected"):
        out[key] = torch.tensor(out[key], dtype=torch.float64)  # (n,)
    return out


def _trl_sequences(run) -> tuple[list[Encoded], list[Encoded]]:
    """TRL's exact token ids as genpref ``Encoded`` sequences (chosen list, rejected list)."""
    chosen, rejected = [], []
    for p, c, r in zip(run["prompt_ids"], run["chosen_ids"], run["rejected_ids"]):
        chosen.append(Encoded(p + c, len(p), False))
        rejected.append(Encoded(p + r, len(p), False))
    return chosen, rejected


# ---------------------------------------------------------------- (a) tokenisation


@requires_trl
def test_tokenisation_matches_trl_for_standard_text(tokenizer, trl_run):
    """Same ids, same prompt boundary; EOS after each completion; no BOS (this tokenizer adds none)."""
    assert tokenizer.encode("a")[0] != tokenizer.bos_token_id  # SmolLM2 adds no BOS to plain text
    for i, row in enumerate(PAIRS):
        chosen, rejected = _encode(tokenizer, row)
        prompt_ids = trl_run["prompt_ids"][i]
        assert chosen.input_ids == prompt_ids + trl_run["chosen_ids"][i]
        assert rejected.input_ids == prompt_ids + trl_run["rejected_ids"][i]
        assert chosen.prompt_len == rejected.prompt_len == len(prompt_ids)
        for seq in (chosen, rejected):
            assert seq.input_ids[-1] == tokenizer.eos_token_id
            assert seq.input_ids[-2] != tokenizer.eos_token_id
            assert tokenizer.bos_token_id not in seq.input_ids


@requires_trl
def test_tokenisation_differs_from_trl_at_a_merged_boundary(tokenizer, trl_run):
    """Prompt ``"... abc "`` + completion ``"def"``: TRL scores ``" def"`` and drops the prompt's ``" "``."""
    i = len(PAIRS)
    chosen, _ = _encode(tokenizer, MERGED)
    prompt_alone = tokenizer.encode(MERGED["prompt"], add_special_tokens=False)
    assert chosen.input_ids[: chosen.prompt_len] == prompt_alone  # genpref: the prompt tokenised on its own
    assert tokenizer.decode(chosen.input_ids[chosen.prompt_len]) == "def"
    # TRL: the prompt's trailing " " token is dropped and merged into the first completion token.
    assert trl_run["prompt_ids"][i] == prompt_alone[:-1]
    assert tokenizer.decode(prompt_alone[-1]) == " "
    assert tokenizer.decode(trl_run["chosen_ids"][i][0]) == " def"
    assert trl_run["chosen_ids"][i][-1] == tokenizer.eos_token_id
    assert len(chosen.input_ids) == len(trl_run["prompt_ids"][i]) + len(trl_run["chosen_ids"][i]) + 1


# ---------------------------------------------------------------- (b) log-probs, (c) DPO loss


@requires_trl
@pytest.mark.parametrize("packing", [True, False], ids=["packed", "padded"])
def test_completion_logps_match_trl(tokenizer, trl_run, packing):
    chosen, rejected = _trl_sequences(trl_run)
    with torch.no_grad():
        sums, counts = _logps(trl_run["policy"], chosen + rejected, packing, tokenizer.pad_token_id)
    n = len(chosen)
    torch.testing.assert_close(sums[:n].double(), trl_run["chosen"], rtol=RTOL, atol=0)
    torch.testing.assert_close(sums[n:].double(), trl_run["rejected"], rtol=RTOL, atol=0)
    assert counts.tolist() == [len(c) for c in trl_run["chosen_ids"] + trl_run["rejected_ids"]]


@requires_trl
def test_dpo_loss_matches_trl_with_a_different_reference(tokenizer, trl_run):
    chosen, rejected = _trl_sequences(trl_run)
    n = len(chosen)
    with torch.no_grad():
        policy, _ = _logps(trl_run["policy"], chosen + rejected, True, tokenizer.pad_token_id)
        reference, _ = _logps(trl_run["reference"], chosen + rejected, True, tokenizer.pad_token_id)
    ours = dpo_loss(policy[:n], policy[n:], reference[:n], reference[n:], BETA).losses
    torch.testing.assert_close(ours.double(), trl_run["losses"], rtol=RTOL, atol=0)
    assert (
        trl_run["losses"] - math.log(2)
    ).abs().min() > 1e-3  # the reference really differs from the policy


# ---------------------------------------------------------------- engine invariants (no TRL)


@pytest.fixture(scope="module")
def sequences(tokenizer) -> list[Encoded]:
    return [seq for row in [*PAIRS, MERGED] for seq in _encode(tokenizer, row)]


def _naive_logps(model, seqs: list[Encoded], pad_id: int) -> torch.Tensor:
    """Σ over completion tokens of log_softmax(all logits)[next token]: the textbook (B, T, V) route."""
    batch = make_batch(seqs, packing=False, pad_id=pad_id)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
    picked = logp.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)  # (B, T-1)
    return (picked * batch["completion_mask"][:, 1:]).sum(-1)  # (B,)


def _value_and_grads(model, fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """fn(model) → (S,) log-probs; gradients of a fixed random combination of them w.r.t. every parameter."""
    model.zero_grad(set_to_none=True)
    logps = fn(model)
    weights = torch.linspace(-1.0, 2.0, len(logps))  # (S,) distinct weights: every sequence matters
    (logps * weights).sum().backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    return logps.detach(), grads


def _assert_grads_close(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> None:
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=RTOL * b.abs().max().item())


@pytest.mark.parametrize("chunk", [7, 1024], ids=["chunk7", "chunk1024"])
def test_packed_equals_padded_values_and_gradients(tokenizer, sequences, chunk):
    model = _perturbed_llama()
    pad = tokenizer.pad_token_id
    packed, packed_grads = _value_and_grads(model, lambda m: _logps(m, sequences, True, pad, chunk)[0])
    padded, padded_grads = _value_and_grads(model, lambda m: _logps(m, sequences, False, pad, chunk)[0])
    torch.testing.assert_close(packed, padded, rtol=RTOL, atol=0)
    _assert_grads_close(packed_grads, padded_grads)


@pytest.mark.parametrize("packing", [True, False], ids=["packed", "padded"])
def test_equals_naive_full_log_softmax(tokenizer, sequences, packing):
    """Chunked LM head on completion positions only = full logits + log_softmax + gather (values, gradients)."""
    model = _perturbed_llama()
    pad = tokenizer.pad_token_id
    ours, our_grads = _value_and_grads(model, lambda m: _logps(m, sequences, packing, pad, chunk=5)[0])
    naive, naive_grads = _value_and_grads(model, lambda m: _naive_logps(m, sequences, pad))
    torch.testing.assert_close(ours, naive, rtol=RTOL, atol=0)
    assert (
        model.get_output_embeddings().weight is model.get_input_embeddings().weight
    )  # tied: both paths' grads
    _assert_grads_close(our_grads, naive_grads)


@pytest.mark.parametrize("packing", [True, False], ids=["packed", "padded"])
def test_prompt_tokens_never_count(tokenizer, sequences, packing):
    model = _load_llama()
    with torch.no_grad():
        sums, counts = _logps(model, sequences, packing, tokenizer.pad_token_id)
        # The same completions after a different prompt: the counts do not move, the log-probs do.
        other = [Encoded(s.input_ids[:1] * 3 + s.input_ids[s.prompt_len :], 3, False) for s in sequences]
        other_sums, other_counts = _logps(model, other, packing, tokenizer.pad_token_id)
    assert counts.tolist() == [len(s.input_ids) - s.prompt_len for s in sequences]
    assert other_counts.tolist() == counts.tolist()
    assert not torch.allclose(sums, other_sums)


def test_right_padded_rows_run_without_the_padding_mask(tokenizer, sequences):
    """Dropping the mask of right-padded rows (the fused causal kernel's route) changes no value or gradient."""
    from genpref.policy.logprobs import is_right_padded

    model = _perturbed_llama()
    batch = make_batch(sequences, packing=False, pad_id=tokenizer.pad_token_id)
    assert is_right_padded(batch["attention_mask"]) and not bool(batch["attention_mask"].all())
    seen = []
    hook = model.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("attention_mask")), with_kwargs=True
    )
    dropped, dropped_grads = _value_and_grads(model, lambda m: completion_logps(m, **batch)[0])
    kept, kept_grads = _value_and_grads(
        model, lambda m: completion_logps(m, **batch, keep_padding_mask=True)[0]
    )
    hook.remove()
    assert seen[0] is None and seen[1] is not None
    torch.testing.assert_close(dropped, kept, rtol=RTOL, atol=0)
    _assert_grads_close(dropped_grads, kept_grads)
    left = batch["attention_mask"].flip(-1)  # left padding keeps its mask
    assert not is_right_padded(left)
