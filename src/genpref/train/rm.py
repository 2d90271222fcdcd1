"""Recipe: train a preference model (BT, GPM or PairPM) on comparison data.

``genpref rm train --config FILE`` runs ``train_preference_model``. It reads top to bottom:
load and validate data → build the model (full / LoRA / frozen backbone) → tokenise once →
plan every optimizer step → (resume) → loop → final checkpoint and evaluation.

Runs unchanged under ``accelerate launch`` (DDP, FSDP, DeepSpeed): each process takes its share
of every global micro-batch; the loss is normalised by the *global* number of rows in the step,
so N processes with batch b produce the update of 1 process with batch N·b.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from genpref.data.load import load_preferences
from genpref.data.types import PreferenceExample
from genpref.errors import ConfigError, TrainingDiverged
from genpref.eval.rm_eval import evaluate_features
from genpref.losses.preference import PreferenceLossType, preference_loss
from genpref.models.lora import apply_lora
from genpref.models.preference_model import PreferenceModel
from genpref.train.checkpoint import (
    STATE_FILE,
    atomic_dir,
    atomic_write_text,
    latest_checkpoint,
    prune_checkpoints,
    read_state,
    step_dir,
)
from genpref.train.metrics import MetricsLog
from genpref.train.rm_config import RMTrainConfig
from genpref.train.schedule import build_optimizer, plan_steps, shard

log = logging.getLogger("genpref")

# Config fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.max_steps",
    "train.log_every",
    "train.eval_every",
    "train.save_every",
    "train.keep_checkpoints",
    "train.progress",
    "train.report_to",
    "resume",
}


@dataclass
class RMTrainResult:
    final_dir: Path
    eval_metrics: dict
    steps: int
    metrics_path: Path


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_resume_config(output_dir: Path, cfg: RMTrainConfig) -> None:
    saved = yaml.safe_load((output_dir / "config.yaml").read_text())
    now = json.loads(json.dumps(asdict(cfg)))  # tuples → lists, like YAML
    changed = [k for k, v in _flat(now).items() if k not in RESUMABLE_CHANGES and _flat(saved).get(k) != v]
    if changed:
        raise ConfigError(
            f"--resume: the config differs from the run in {output_dir} in {', '.join(sorted(changed))}; "
            "these values change what the finished steps mean.\n"
            "  fix: restore those values, or start a new run in another output_dir"
        )


def load_train_eval(
    cfg: RMTrainConfig, output_dir: Path
) -> tuple[list[PreferenceExample], list[PreferenceExample]]:
    """Validated training and evaluation comparisons, with reports printed."""
    if cfg.data.train is None:
        raise ConfigError("data.train is required.\n  fix: pass --data.train FILE (or set it in --config)")
    rejects = cfg.data.rejects or str(output_dir / "rejects.jsonl")
    report = load_preferences(
        cfg.data.train, split=cfg.data.split, on_error=cfg.data.on_error, rejects_path=rejects
    )
    log.info(report.summary())
    train = list(report.examples)
    if cfg.data.eval is not None:
        ev = load_preferences(
            cfg.data.eval,
            split=cfg.data.eval_split,
            on_error=cfg.data.on_error,
            rejects_path=str(output_dir / "rejects_eval.jsonl"),
        )
        log.info(ev.summary())
        evals = list(ev.examples)
    elif cfg.data.eval_fraction > 0:
        gen = torch.Generator().manual_seed(cfg.train.seed)
        order = torch.randperm(len(train), generator=gen).tolist()
        n_eval = max(1, int(round(cfg.data.eval_fraction * len(train))))
        evals = [train[i] for i in order[:n_eval]]
        train = [train[i] for i in sorted(order[n_eval:])]
    else:
        evals = []
    if cfg.data.limit is not None:
        train = train[: cfg.data.limit]
    if cfg.data.eval_limit is not None:
        evals = evals[: cfg.data.eval_limit]
    if not train:
        raise ConfigError(f"data.train ({cfg.data.train}) has no usable rows")
    return train, evals


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
    feats, dropped, truncated = [], 0, 0
    for ex in tqdm(examples, desc=f"tokenize {what}", disable=not progress, leave=False):
        f = model.featurize(ex)
        if f is None:
            dropped += 1
            continue
        truncated += int(f.first.truncated or f.second.truncated)
        feats.append(f)
    policy = model.config.truncation
    log.info(
        f"{what}: {len(feats)} comparisons tokenised (max_length {model.config.max_length}); "
        f"{truncated} truncated, {dropped} dropped by truncation policy '{policy}'"
    )
    return feats


def train_preference_model(cfg: RMTrainConfig) -> RMTrainResult:
    """``genpref rm train``: load and validate the configured data, then train."""
    output_dir = Path(cfg.output_dir)
    if not cfg.resume and (output_dir / "config.yaml").exists():
        raise ConfigError(
            f"{output_dir} already holds a run.\n  fix: pass --resume to continue it, or choose another output_dir"
        )
    train_examples, eval_examples = load_train_eval(cfg, output_dir)
    return train_preference_model_on(cfg, train_examples, eval_examples)


def train_preference_model_on(
    cfg: RMTrainConfig,
    train_examples: list[PreferenceExample],
    eval_examples: list[PreferenceExample] | None = None,
    overwrite: bool = False,
) -> RMTrainResult:
    """Train on in-memory comparisons (the Python API; ``cfg.data`` is ignored).

    Args:
        overwrite: delete an existing run in ``cfg.output_dir`` first (ignored with ``cfg.resume``).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    trackers = [t for t in cfg.train.report_to if t in ("tensorboard", "wandb")]
    _reset_accelerate_precision()
    acc = Accelerator(
        mixed_precision="bf16" if cfg.train.precision == "bf16" else "no",
        log_with=trackers or None,
        project_dir=cfg.output_dir,
    )
    output_dir = Path(cfg.output_dir)
    if overwrite and not cfg.resume and acc.is_main_process and output_dir.exists():
        import shutil

        shutil.rmtree(output_dir)
    acc.wait_for_everyone()
    resume_from = latest_checkpoint(output_dir) if cfg.resume else None
    if not cfg.resume and (output_dir / "config.yaml").exists():
        raise ConfigError(
            f"{output_dir} already holds a run.\n  fix: pass --resume to continue it, or choose another output_dir"
        )
    if cfg.resume and (output_dir / "config.yaml").exists():
        _check_resume_config(output_dir, cfg)
    acc.wait_for_everyone()
    if acc.is_main_process:
        atomic_write_text(
            output_dir / "config.yaml", yaml.safe_dump(json.loads(json.dumps(asdict(cfg))), sort_keys=False)
        )
    set_seed(cfg.train.seed)
    eval_examples = eval_examples or []

    # 2. model
    model = build_model(cfg)
    progress = cfg.train.progress and acc.is_main_process
    train_feats = featurize_all(model, train_examples, "train", progress)
    eval_feats = featurize_all(model, eval_examples, "eval", progress) if eval_examples else []
    # 3. plan every optimizer step up front (deterministic; see schedule.py)
    P, rank = acc.num_processes, acc.process_index
    plan = plan_steps(len(train_feats), cfg.train, P)
    if not plan:
        raise ConfigError(
            f"no training steps: {len(train_feats)} rows for batch {cfg.train.batch_size} x {P} processes"
        )
    optimizer, scheduler = build_optimizer(model, cfg.optim, len(plan))
    model, optimizer = acc.prepare(model, optimizer)
    acc.register_for_checkpointing(scheduler)  # stepped by us, once per optimizer step
    if trackers:
        acc.init_trackers("genpref-rm")
    start = 0
    if resume_from is not None:
        acc.load_state(str(resume_from / "accelerate"))
        start = read_state(resume_from)["global_step"]
        log.info(f"resumed from {resume_from} at step {start}")
    metrics = MetricsLog(
        output_dir / "metrics.jsonl",
        acc.is_main_process,
        resume_step=start if resume_from else None,
        accelerator=acc,
    )
    loss_type = PreferenceLossType(cfg.loss)
    rows_per_pair = 2 if cfg.model.type == "pairpm" else 1
    unwrapped = acc.unwrap_model(model)
    last_good = resume_from
    params = [p for p in model.parameters() if p.requires_grad]

    bar = tqdm(total=len(plan), initial=start, desc=f"train {cfg.model.type}", disable=not progress)
    window = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, rows since the last log
    for step in range(start, len(plan)):
        model.train()
        micro_batches = plan[step]
        n_rows = rows_per_pair * sum(len(m) for m in micro_batches)
        totals = torch.zeros(4, dtype=torch.float64, device=acc.device)  # loss, correct, rows, non-finite
        for m_idx, global_idx in enumerate(micro_batches):
            local = [train_feats[i] for i in shard(global_idx, rank, P)]
            batch = {k: v.to(acc.device) for k, v in unwrapped.collate(local).items()}
            sync = m_idx == len(micro_batches) - 1
            with acc.no_sync(model) if not sync else _null():
                with acc.autocast():
                    out = model(**batch)
                per_example = preference_loss(
                    loss_type, out["logits"], out["label"], out["margin"], cfg.regression_clip
                )
                loss = per_example.sum() * P / n_rows  # global mean over the step (see module docstring)
                acc.backward(loss)
            oriented = torch.where(out["label"] >= 0.5, out["logits"], -out["logits"]).detach()
            totals += torch.stack(
                [
                    per_example.detach().sum().double(),
                    (oriented > 0).sum().double(),
                    torch.tensor(float(len(per_example)), dtype=torch.float64, device=acc.device),
                    (~torch.isfinite(per_example.detach())).sum().double(),
                ]
            )
        totals = acc.reduce(totals, reduction="sum")
        grad_norm = acc.clip_grad_norm_(
            params, cfg.optim.max_grad_norm if cfg.optim.max_grad_norm > 0 else math.inf
        )
        grad_norm = float(grad_norm)
        if totals[3] > 0 or not math.isfinite(grad_norm):
            what = "loss" if totals[3] > 0 else "gradient norm"
            raise TrainingDiverged(
                f"non-finite {what} at step {step + 1}; no update was applied. "
                f"Last good checkpoint: {last_good or 'none (no checkpoint written yet)'}.\n"
                "  fix: lower optim.lr, check the data for extreme rows, or use precision=fp32"
            )
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        window += totals[:3].cpu()
        bar.update(1)
        bar.set_postfix(
            loss=f"{totals[0].item() / totals[2].item():.4f}",
            acc=f"{totals[1].item() / totals[2].item():.3f}",
        )
        if done % cfg.train.log_every == 0 or done == len(plan):
            metrics.log(
                done,
                loss=window[0].item() / window[2].item(),
                accuracy=window[1].item() / window[2].item(),
                lr=scheduler.get_last_lr()[0],
                grad_norm=grad_norm,
                epoch=done / len(plan) * cfg.train.epochs,
            )
            window.zero_()
        if eval_feats and cfg.train.eval_every and done % cfg.train.eval_every == 0 and done < len(plan):
            ev = evaluate_features(unwrapped, eval_feats, cfg.eval_batch_size, accelerator=acc)
            metrics.log(done, **{f"eval_{k}": v for k, v in ev["overall"].items() if isinstance(v, float)})
        if cfg.train.save_every and done % cfg.train.save_every == 0 and done < len(plan):
            last_good = save_checkpoint(acc, unwrapped, output_dir, done, cfg.train.keep_checkpoints)
    bar.close()

    # 4. final model and evaluation
    final_dir = output_dir / "final"
    if acc.is_main_process:
        with atomic_dir(final_dir) as tmp:
            unwrapped.save_pretrained(tmp)
    acc.wait_for_everyone()
    eval_metrics = {}
    if eval_feats:
        eval_metrics = evaluate_features(unwrapped, eval_feats, cfg.eval_batch_size, accelerator=acc)
        metrics.log(
            len(plan), **{f"eval_{k}": v for k, v in eval_metrics["overall"].items() if isinstance(v, float)}
        )
        if acc.is_main_process:
            atomic_write_text(output_dir / "eval_results.json", json.dumps(eval_metrics, indent=2))
    if trackers:
        acc.end_training()
    return RMTrainResult(final_dir, eval_metrics, len(plan), output_dir / "metrics.jsonl")


def _reset_accelerate_precision() -> None:
    """Allow several trainings with different precisions in one Python process (API use, tests).

    accelerate keeps a process-wide AcceleratorState singleton that refuses a second mixed_precision;
    the distributed part (PartialState) is kept.
    """
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)


def save_checkpoint(acc, model: PreferenceModel, output_dir: Path, step: int, keep: int) -> Path:
    """Model (loadable with from_pretrained) + optimizer/scheduler/RNG state, written atomically."""
    target = step_dir(output_dir, step)
    tmp = target.parent / f".{target.name}.tmp"
    if acc.is_main_process:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp / "accelerate"))  # collective under DeepSpeed/FSDP
    if acc.is_main_process:
        model.save_pretrained(tmp / "model")
        (tmp / STATE_FILE).write_text(json.dumps({"global_step": step}))
        import os

        os.replace(tmp, target)
        prune_checkpoints(output_dir, keep)
    acc.wait_for_everyone()
    return target


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
