"""Recipe: train a preference model (BT, GPM or PairPM) on comparison data.

``genpref rm train --config FILE`` runs ``train_preference_model``. It reads top to bottom:
load and validate data → build the model (full / LoRA / frozen backbone) → tokenise once →
plan every optimizer step → the shared loop (``genpref.train.loop``: accumulation, resume, NaN guard,
checkpoints) with this recipe's micro-step → final evaluation.

Runs unchanged under ``accelerate launch`` (DDP, FSDP, DeepSpeed): each process takes its share
of every global micro-batch (see ``genpref.train.loop`` for the normalisation).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genpref.data.encode import warn_unknown_tokens
from genpref.data.rankings import load_comparisons
from genpref.data.train_eval import load_train_eval as load_train_eval_rows
from genpref.data.types import PreferenceExample
from genpref.eval.rm_eval import evaluate_features
from genpref.losses.preference import PreferenceLossType, preference_loss, reward_centering_penalty
from genpref.models.backbone import check_backbone
from genpref.models.frozen_features import FrozenFeatures
from genpref.models.lora import apply_lora
from genpref.models.preference_model import PairFeatures, PreferenceModel
from genpref.train.loop import StepResult, TrainResult, finish, run_loop, start_run
from genpref.train.rm_config import RMTrainConfig
from genpref.train.run_dir import claim_run

log = logging.getLogger("genpref")


RMTrainResult = TrainResult  # the name before issue 16


def load_train_eval(
    cfg: RMTrainConfig, output_dir: Path
) -> tuple[list[PreferenceExample], list[PreferenceExample]]:
    """Validated training and evaluation comparisons (``genpref.data.train_eval``: the rule of every recipe)."""
    return load_train_eval_rows(
        cfg.data, partial(load_comparisons, ranking=cfg.data.ranking), output_dir, seed=cfg.train.seed
    )


def build_model(cfg: RMTrainConfig) -> PreferenceModel:
    torch.manual_seed(cfg.train.seed)  # head initialisation
    model = PreferenceModel.from_config(cfg.model)
    if cfg.train.finetune == "frozen":
        model.backbone.requires_grad_(False)
    elif cfg.train.finetune == "lora":
        model.backbone = apply_lora(model.backbone, cfg.train.lora)
    if cfg.train.gradient_checkpointing:
        model.backbone.gradient_checkpointing_enable()
    return model


def featurize_all(model: PreferenceModel, examples: list[PreferenceExample], what: str, progress: bool):
    feats, dropped, truncated, origins = [], 0, 0, []
    for ex in tqdm(examples, desc=f"tokenize {what}", disable=not progress, leave=False):
        f = model.featurize(ex)
        if f is None:
            dropped += 1
            continue
        truncated += int(f.first.truncated or f.second.truncated)
        feats.append(f)
        origins.append(ex.origin)
    warn_unknown_tokens(model.tokenizer, zip(origins, ((f.first, f.second) for f in feats)), what)
    policy = model.config.truncation
    log.info(
        f"{what}: {len(feats)} comparisons tokenised (max_length {model.config.max_length}); "
        f"{truncated} truncated, {dropped} dropped by truncation policy '{policy}'"
    )
    return feats


class PreferenceRecipe:
    """One micro-batch of preference-model training: a concatenated forward and the link loss."""

    def __init__(
        self, cfg: RMTrainConfig, features: list[PairFeatures], eval_features: list[PairFeatures]
    ) -> None:
        self.cfg, self.features, self.eval_features = cfg, features, eval_features
        self.loss_type = PreferenceLossType(cfg.loss)
        self.rows_per_example = 2 if cfg.model.type == "pairpm" else 1
        self.cached = cfg.train.finetune == "frozen" and cfg.cache_frozen_features
        self.frozen: FrozenFeatures | None = None  # computed at the first step, on the run's device

    def micro_step(self, model, indices: list[int], device) -> StepResult:
        unwrapped = getattr(model, "module", model)
        if self.cached:
            if self.frozen is None:
                self.frozen = FrozenFeatures(unwrapped, self.features, self.cfg.eval_batch_size)
                log.info(
                    f"frozen backbone: {self.frozen.distinct} distinct sequences of {len(self.features)} "
                    "comparisons computed once; the heads train on their cached features"
                )
            batch = {k: v.to(device) for k, v in self.frozen.batch(indices).items()}
        else:
            batch = {
                k: v.to(device) for k, v in unwrapped.collate([self.features[i] for i in indices]).items()
            }
        out = model(**batch)  # logits (N,), label (N,), margin (N,)
        losses = preference_loss(
            self.loss_type, out["logits"], out["label"], out["margin"], self.cfg.regression_clip
        )
        if self.cfg.center_rewards_coefficient > 0:
            losses = losses + self.cfg.center_rewards_coefficient * reward_centering_penalty(
                *out["rewards"].unbind(-1)
            )
        oriented = torch.where(out["label"] >= 0.5, out["logits"], -out["logits"])
        return StepResult(losses, {"accuracy": (oriented > 0).float()})

    def save_model(self, model: PreferenceModel, path: Path) -> None:
        model.save_pretrained(path)

    def evaluate(self, model: PreferenceModel, accelerator) -> dict[str, float]:
        return _flat_overall(self.full_evaluation(model, accelerator))

    def full_evaluation(self, model: PreferenceModel, accelerator) -> dict:
        if not self.eval_features:
            return {}
        return evaluate_features(model, self.eval_features, self.cfg.eval_batch_size, accelerator=accelerator)


def _flat_overall(results: dict) -> dict[str, float]:
    return {k: v for k, v in results.get("overall", {}).items() if isinstance(v, float)}


def prompt_key(features: PairFeatures) -> tuple[int, ...]:
    """The prompt tokens of a tokenised comparison (shared by both sides; PairPM: the joint prefix)."""
    return tuple(features.first.input_ids[: features.first.prompt_len])


def train_preference_model(cfg: RMTrainConfig) -> TrainResult:
    """``genpref rm train``: load and validate the configured data, then train."""
    output_dir = Path(cfg.output_dir)
    with claim_run(cfg):  # before the rejects file is written
        train_examples, eval_examples = load_train_eval(cfg, output_dir)
        return train_preference_model_on(cfg, train_examples, eval_examples)


def train_preference_model_on(
    cfg: RMTrainConfig,
    train_examples: list[PreferenceExample],
    eval_examples: list[PreferenceExample] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train on in-memory comparisons (the Python API; ``cfg.data`` is ignored).

    Args:
        overwrite: delete an existing run in ``cfg.output_dir`` first (as ``cfg.overwrite``; ignored with
            ``cfg.resume``).
    """
    check_backbone(
        cfg.model.backbone,
        cfg.model.max_length,
        field="model.max_length",
        trust_remote_code=cfg.model.trust_remote_code,
    )
    with claim_run(cfg, overwrite):
        return _train(cfg, train_examples, eval_examples or [])


def _train(
    cfg: RMTrainConfig, train_examples: list[PreferenceExample], eval_examples: list[PreferenceExample]
) -> TrainResult:
    output_dir = Path(cfg.output_dir)
    acc, resume_from = start_run(cfg, cfg.train, output_dir, cfg.resume)
    model = build_model(cfg)
    progress = cfg.train.progress and acc.is_main_process
    recipe = PreferenceRecipe(
        cfg,
        featurize_all(model, train_examples, "train", progress),
        featurize_all(model, eval_examples or [], "eval", progress) if eval_examples else [],
    )
    result = run_loop(
        acc,
        model,
        recipe,
        len(recipe.features),
        cfg.train,
        cfg.optim,
        output_dir,
        resume_from,
        desc=f"train {cfg.model.type}",
        head_names=("head", "prompt_head"),
        groups=[prompt_key(f) for f in recipe.features] if cfg.train.group_by_prompt else None,
    )
    eval_metrics = recipe.full_evaluation(acc.unwrap_model(model), acc)
    return finish(acc, result, output_dir, eval_metrics, _flat_overall(eval_metrics))
