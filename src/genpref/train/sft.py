"""Recipe: supervised fine-tuning of a causal LM on completions (``genpref sft``).

The loss is the per-token average negative log-likelihood of the completion, per sequence; prompt
tokens are never scored. Sequences are packed (padding-free) and log-probs come from the same
``completion_logps`` engine as the DPO family, so an SFT start policy and its preference
optimisation see identical tokenisation (chat template applied once).
"""

from __future__ import annotations

import logging
from pathlib import Path

from genpref.data.completions import load_completions
from genpref.data.load import LoadReport
from genpref.data.train_eval import load_train_eval
from genpref.errors import ConfigError
from genpref.losses.policy import nll_loss
from genpref.models.backbone import check_backbone
from genpref.models.lora import apply_lora
from genpref.policy.logprobs import PolicyLogps
from genpref.policy.model import load_policy, save_policy
from genpref.policy.sequences import make_batch, resolve_packing
from genpref.train.device import check_trainable_attention
from genpref.train.loop import StepResult, TrainResult, finish, run_loop, start_run
from genpref.train.po_config import SFTConfig
from genpref.train.run_dir import claim_run

log = logging.getLogger("genpref")


class SFTRecipe:
    rows_per_example = 1

    def __init__(self, seqs: list, eval_seqs: list, tokenizer, packing: bool) -> None:
        self.seqs, self.eval_seqs, self.tokenizer, self.packing = seqs, eval_seqs, tokenizer, packing

    def micro_step(self, model, indices: list[int], device, seqs: list | None = None) -> StepResult:
        chosen = [(seqs or self.seqs)[i] for i in indices]
        sums, counts = model(
            **make_batch(chosen, packing=self.packing, pad_id=self.tokenizer.pad_token_id, device=device)
        )
        return StepResult(nll_loss(sums, counts), {"tokens": counts.float()})

    def save_model(self, model, path: Path) -> None:
        save_policy(model.lm if isinstance(model, PolicyLogps) else model, self.tokenizer, path)

    def evaluate(self, model, accelerator) -> dict[str, float]:
        import torch

        if not self.eval_seqs:
            return {}
        with torch.no_grad():
            out = self.micro_step(model, list(range(len(self.eval_seqs))), accelerator.device, self.eval_seqs)
        return {"loss": float(out.losses.mean())}


def _load_sft_rows(source, **kwargs) -> LoadReport:
    """Completion rows; of preference pairs only the chosen side (SFT trains on what was preferred)."""
    report = load_completions(source, **kwargs)
    report.examples = [ex for ex in report.examples if ex.label is not False]
    return report


def train_sft(cfg: SFTConfig) -> TrainResult:
    """Load prompt/completion (or messages, or pairs → chosen) rows and fine-tune on the completions."""
    output_dir = Path(cfg.output_dir)
    check_backbone(
        cfg.policy.model,
        cfg.policy.max_length,
        field="policy.max_length",
        trust_remote_code=cfg.policy.trust_remote_code,
    )
    with claim_run(cfg):
        return _train_sft(cfg, output_dir)


def _train_sft(cfg: SFTConfig, output_dir: Path) -> TrainResult:
    from genpref.data.encode import Truncation, encode_response

    train, evals = load_train_eval(cfg.data, _load_sft_rows, output_dir, seed=cfg.train.seed)
    acc, resume_from = start_run(cfg, cfg.train, output_dir, cfg.resume)
    lm, tokenizer = load_policy(
        cfg.policy.model, trust_remote_code=cfg.policy.trust_remote_code, attention=cfg.policy.attention
    )
    check_trainable_attention(lm, acc.device)

    def encode(examples):
        enc = [
            encode_response(
                tokenizer,
                ex.prompt,
                ex.completion,
                max_length=cfg.policy.max_length,
                truncation=Truncation(cfg.policy.truncation),
                is_encoder=False,
            )
            for ex in examples
        ]
        kept = [e for e in enc if e is not None]
        log.info(
            f"{len(kept)} sequences tokenised; {sum(e.truncated for e in kept)} truncated, "
            f"{len(enc) - len(kept)} dropped by truncation policy '{cfg.policy.truncation}'"
        )
        return kept

    recipe = SFTRecipe(encode(train), encode(evals), tokenizer, resolve_packing(cfg.engine.packing, lm))
    if cfg.train.finetune == "lora":
        lm = apply_lora(lm, cfg.train.lora)
    elif cfg.train.finetune == "frozen":
        raise ConfigError("train.finetune=frozen trains nothing in a policy.\n  fix: use full or lora")
    if cfg.train.gradient_checkpointing:
        lm.gradient_checkpointing_enable()
    model = PolicyLogps(lm, cfg.engine.logprob_chunk, compile=cfg.engine.compile)
    result = run_loop(
        acc, model, recipe, len(recipe.seqs), cfg.train, cfg.optim, output_dir, resume_from, desc="sft"
    )
    eval_metrics = recipe.evaluate(acc.unwrap_model(model), acc)
    return finish(acc, result, output_dir, eval_metrics, eval_metrics)
