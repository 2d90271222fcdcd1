"""The training loop shared by every recipe (preference models, SFT, DPO family, self-play).

A recipe supplies the math of one micro-batch (``Recipe.micro_step``: per-row losses and per-row
statistics) and how to save its model; this module does the rest, identically for all of them:
accelerate set-up, the run folder, resume, gradient accumulation, the global-mean normalisation,
clipping, the NaN guard, logging, periodic evaluation, atomic checkpoints, and a clean stop on SIGINT or
SIGTERM (what schedulers send): the step in flight finishes, a checkpoint is written, and
``RunInterrupted`` names it.

Normalisation: a step's loss is Σ(per-row losses) · P / (rows in the global step), so with DDP's
gradient averaging the update equals that of one process over the whole global batch, for any
process count P and any split of the step into micro-batches.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import yaml
from torch import Tensor
from tqdm.auto import tqdm

from genpref.atomic_io import atomic_dir, atomic_write_text
from genpref.distributed import shard
from genpref.errors import ConfigError, RunInterrupted, TrainingDiverged
from genpref.train.checkpoint import (
    STATE_FILE,
    latest_checkpoint,
    prune_checkpoints,
    read_state,
    step_dir,
    write_complete_marker,
)
from genpref.train.config import OptimConfig, TrainConfig
from genpref.train.metrics import MetricsLog
from genpref.train.schedule import build_optimizer, plan_steps

log = logging.getLogger("genpref")

RESUMABLE_CHANGES = {
    "train.epochs", "train.max_steps", "train.log_every", "train.eval_every", "train.save_every",
    "train.keep_checkpoints", "train.progress", "train.report_to", "resume", "overwrite", "output_dir",
}  # fmt: skip
"""Config fields that may change between an interrupted run and its resumption (a run folder may be moved)."""
PENDING_CONFIG = ".config.yaml.pending"
"""The run's config until its first checkpoint; then it becomes config.yaml (see genpref.train.run_dir)."""


@dataclass
class StepResult:
    """One micro-batch on one process."""

    losses: Tensor
    """(N,) per-row losses (graph attached)."""
    stats: dict[str, Tensor]
    """Per-row statistics (N,) to average for logging, e.g. {"accuracy": 0/1 per row}."""


class Recipe(Protocol):
    rows_per_example: int
    """Loss rows produced per training example (PairPM: 2, both presentation orders)."""
    # optional ``progress_keys``: the per-row stats the progress bar shows (default: loss, accuracy)

    def micro_step(self, model, indices: list[int], device) -> StepResult: ...

    def save_model(self, model, path: Path) -> None: ...

    def evaluate(self, model, accelerator) -> dict[str, float]: ...


@dataclass
class TrainResult:
    """What a training recipe (``rm train``, ``po train``, ``sft``) returns."""

    final_dir: Path
    """The trained model's folder (OUTPUT_DIR/final)."""
    eval_metrics: dict
    """The final evaluation (empty without evaluation data), as in OUTPUT_DIR/eval_results.json."""
    steps: int
    """Optimizer steps of the run."""
    metrics_path: Path
    """OUTPUT_DIR/metrics.jsonl."""


@dataclass
class LoopResult:
    final_dir: Path
    steps: int
    metrics: MetricsLog
    solver: dict = field(default_factory=dict)
    """What a solver that finishes the loop's update reports (self-play ``line_search``: the scale)."""


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _reset_accelerate_precision() -> None:
    """Allow several trainings with different precisions in one Python process (API use, tests).

    accelerate keeps a process-wide AcceleratorState singleton that refuses a second mixed_precision;
    the distributed part (PartialState) is kept.
    """
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)


def start_run(config, train: TrainConfig, output_dir: Path, resume: bool):
    """Create the Accelerator; check a resumed run's config. Returns (acc, checkpoint|None).

    Call it inside ``genpref.train.run_dir.claim_run_dir(output_dir, ...)``, which locks the folder and
    refuses to start over an existing run.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from genpref.train.device import default_device, resolve_precision

    trackers = [t for t in train.report_to if t in ("tensorboard", "wandb")]
    _reset_accelerate_precision()
    # the device type decides the bf16 check; a bare PartialState() here would set up the process group
    # before Accelerator does (and, under `accelerate launch` on CPUs, as a single process)
    precision = resolve_precision(train.precision, default_device(), train.allow_slow_bf16)
    acc = Accelerator(
        mixed_precision="bf16" if precision == "bf16" else "no",
        log_with=trackers or None,
        project_dir=str(output_dir),
    )
    saved = output_dir / "config.yaml"
    now = json.loads(json.dumps(config if isinstance(config, dict) else asdict(config)))  # tuples → lists
    if saved.exists() and resume:
        before = _flat(yaml.safe_load(saved.read_text()))
        changed = sorted(
            k for k, v in _flat(now).items() if k not in RESUMABLE_CHANGES and before.get(k) != v
        )
        if changed:
            raise ConfigError(
                f"--resume: the config differs from the run in {output_dir} in {', '.join(changed)}; these values "
                "change what the finished steps mean.\n  fix: restore those values, or start a new run in another output_dir"
            )
    acc.wait_for_everyone()
    if acc.is_main_process:  # published as config.yaml with the first checkpoint (publish_config)
        atomic_write_text(output_dir / PENDING_CONFIG, yaml.safe_dump(now, sort_keys=False))
    set_seed(train.seed)
    if trackers:
        acc.init_trackers("genpref")
    return acc, (latest_checkpoint(output_dir) if resume else None)


def publish_config(output_dir: Path) -> None:
    """Make the pending config the run's config.yaml (main process; from the first checkpoint on)."""
    pending = output_dir / PENDING_CONFIG
    if pending.exists():
        os.replace(pending, output_dir / "config.yaml")


def save_checkpoint(acc, recipe: Recipe, model, output_dir: Path, step: int, keep: int) -> Path:
    """Model (loadable on its own) + optimizer/scheduler/RNG state, renamed into place when complete."""
    target = step_dir(output_dir, step)
    tmp = target.parent / f".{target.name}.tmp"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp / "accelerate"))  # collective under DeepSpeed/FSDP
    if acc.is_main_process:
        recipe.save_model(model, tmp / "model")
        (tmp / STATE_FILE).write_text(json.dumps({"global_step": step}))
        write_complete_marker(tmp)  # last: a checkpoint without it is skipped on resume
        publish_config(output_dir)
        if target.exists():  # an incomplete checkpoint of this step, skipped on resume
            shutil.rmtree(target)
        os.replace(tmp, target)
        prune_checkpoints(output_dir, keep)
    acc.wait_for_everyone()
    return target


class _StopRequest:
    """Which signal asked the run to stop (0: none yet)."""

    def __init__(self) -> None:
        self.signum = 0

    def handle(self, signum, frame) -> None:
        if self.signum:  # the second signal: stop at once
            raise KeyboardInterrupt
        self.signum = signum
        log.warning(
            f"received {signal.Signals(signum).name}: stopping after this step with a checkpoint "
            "(send it again to stop at once)"
        )


@contextmanager
def _stop_on_signals() -> Iterator[_StopRequest]:
    """SIGINT/SIGTERM during training: finish the step in flight, checkpoint, raise RunInterrupted.

    A second signal stops at once (KeyboardInterrupt). Handlers are installed only in the main thread.
    """
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def disable_dropout(model: torch.nn.Module) -> int:
    """Zero every dropout probability in ``model``: ``nn.Dropout`` modules and the float
    ``attention_dropout`` / ``dropout`` attributes that some attention classes read directly
    (e.g. Llama's). Returns how many were changed."""
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            changed += module.p != 0
            module.p = 0.0
            continue
        for attr in ("attention_dropout", "dropout"):
            value = getattr(module, attr, None)
            if isinstance(value, float) and not isinstance(value, bool):
                changed += value != 0
                setattr(module, attr, 0.0)
    return changed


def _fused_adamw(acc) -> bool:
    """Fused AdamW when accelerate keeps our optimizer as built (no DeepSpeed / FSDP rewrap): on CUDA,
    and on the CPU, where the default per-parameter loop took 0.128 s per step for MiniLM's 22.7M
    parameters against 0.026 s fused (2-core AVX2 EPYC, torch 2.13)."""
    from accelerate.utils import DistributedType

    return (acc.device.type, acc.distributed_type) in {
        ("cuda", DistributedType.NO),
        ("cuda", DistributedType.MULTI_GPU),
        ("cpu", DistributedType.NO),
        ("cpu", DistributedType.MULTI_CPU),
    }


def run_loop(
    acc,
    model,
    recipe: Recipe,
    n_examples: int,
    train: TrainConfig,
    optim: OptimConfig,
    output_dir: Path,
    resume_from: Path | None,
    desc: str,
    head_names: tuple[str, ...] = (),
    groups: list | None = None,
    lengths: list[int] | None = None,
    save_final: bool = True,
) -> LoopResult:
    """Plan every optimizer step over ``n_examples``, run them from the resume point, save ``output_dir/final``.

    ``head_names``: top-level modules trained with ``optim.head_lr`` (new heads of a preference model).
    ``groups``: a prompt key per example, required by (and only used with) ``train.group_by_prompt``.
    ``lengths``: token length per example, required by (and only used with) ``train.group_by_length``.
    ``save_final``: write ``output_dir/final`` (off for in-memory loops such as ``genpref bench nash``,
    which keep the model and train it again).
    """
    if train.group_by_prompt and groups is None:
        raise ConfigError(
            "train.group_by_prompt is supported by preference-model training (genpref rm train) only.\n"
            "  fix: remove train.group_by_prompt from this config"
        )
    if train.group_by_length and lengths is None:
        raise ConfigError(
            "train.group_by_length is supported by genpref po and genpref selfplay only.\n"
            "  fix: remove train.group_by_length from this config"
        )
    if train.group_by_length and train.group_by_prompt:
        raise ConfigError(
            "train.group_by_prompt and train.group_by_length both reorder batches; choose one.\n"
            "  fix: set one of them to false"
        )
    plan = plan_steps(
        n_examples,
        train,
        acc.num_processes,
        groups if train.group_by_prompt else None,
        lengths if train.group_by_length else None,
    )
    if not plan:
        raise ConfigError(
            f"no training steps: {n_examples} rows for batch {train.batch_size} x {acc.num_processes} processes"
        )
    if train.disable_dropout:
        disable_dropout(model)
    optimizer, scheduler = build_optimizer(model, optim, len(plan), head_names, fused=_fused_adamw(acc))
    model, optimizer = acc.prepare(model, optimizer)
    acc.register_for_checkpointing(scheduler)  # stepped here, once per optimizer step
    start = 0
    if resume_from is not None:
        try:
            acc.load_state(str(resume_from / "accelerate"))
        except Exception as exc:  # a part replaced by a corrupt file of the same size
            raise ConfigError(
                f"--resume: cannot load checkpoint {resume_from} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}).\n  fix: delete that folder to resume "
                "from the previous checkpoint, or start again with --overwrite true"
            ) from None
        start = read_state(resume_from)["global_step"]
        log.info(f"resumed from {resume_from} at step {start}")
    metrics = MetricsLog(
        output_dir / "metrics.jsonl",
        acc.is_main_process,
        resume_step=start if resume_from else None,
        accelerator=acc,
    )
    unwrapped = acc.unwrap_model(model)
    params = [p for p in model.parameters() if p.requires_grad]
    P, rank = acc.num_processes, acc.process_index
    last_good = resume_from
    bar = tqdm(
        total=len(plan), initial=start, desc=desc, disable=not (train.progress and acc.is_main_process)
    )
    window: dict[str, float] = {}
    seen = sum(len(m) for planned in plan[:start] for m in planned)  # examples trained on: epoch = seen / n
    with _stop_on_signals() as stop:
        for step in range(start, len(plan)):
            model.train()
            micro_batches = plan[step]
            examples = sum(len(m) for m in micro_batches)
            seen += examples
            n_rows = recipe.rows_per_example * examples
            sums: dict[str, Tensor] = {}
            for m_idx, global_idx in enumerate(micro_batches):
                last = m_idx == len(micro_batches) - 1
                with nullcontext() if last else acc.no_sync(model):
                    out = recipe.micro_step(model, shard(global_idx, rank, P), acc.device)
                    acc.backward(out.losses.sum() * P / n_rows)  # global mean (module docstring)
                losses = out.losses.detach().double()
                for key, value in {
                    "loss": losses,
                    **{k: v.detach().double() for k, v in out.stats.items()},
                }.items():
                    sums[key] = sums.get(key, 0) + value.sum()
                sums["rows"] = sums.get("rows", 0) + torch.tensor(
                    float(len(losses)), dtype=torch.float64, device=acc.device
                )
                sums["non_finite"] = sums.get("non_finite", 0) + (~torch.isfinite(losses)).sum().double()
            sums["stop"] = torch.tensor(float(stop.signum), dtype=torch.float64, device=acc.device)
            keys = sorted(sums)
            reduced = acc.reduce(torch.stack([sums[k] for k in keys]), reduction="sum").cpu().tolist()
            totals = dict(zip(keys, reduced))
            grad_norm = float(
                acc.clip_grad_norm_(params, optim.max_grad_norm if optim.max_grad_norm > 0 else math.inf)
            )
            if totals["non_finite"] > 0 or not math.isfinite(grad_norm):
                what = "loss" if totals["non_finite"] > 0 else "gradient norm"
                raise TrainingDiverged(
                    f"non-finite {what} at step {step + 1}; no update was applied. "
                    f"Last good checkpoint: {last_good or 'none (no checkpoint written yet)'}.\n"
                    "  fix: lower optim.lr, check the data for extreme rows, or use precision=fp32"
                )
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done = step + 1
            for key, value in totals.items():
                window[key] = window.get(key, 0.0) + value
            bar.update(1)
            shown = getattr(recipe, "progress_keys", ("loss", "accuracy"))
            bar.set_postfix({k: f"{totals[k] / totals['rows']:.4g}" for k in shown if k in totals})
            if done % train.log_every == 0 or done == len(plan):
                means = {
                    k: v / window["rows"]
                    for k, v in window.items()
                    if k not in ("rows", "non_finite", "stop")
                }
                metrics.log(
                    done,
                    **means,
                    lr=scheduler.get_last_lr()[0],
                    grad_norm=grad_norm,
                    epoch=seen / n_examples,  # not done/len(plan)·epochs: max_steps may cut the plan
                )
                window = {}
            if train.eval_every and done % train.eval_every == 0 and done < len(plan):
                metrics.log(done, **{f"eval_{k}": v for k, v in recipe.evaluate(unwrapped, acc).items()})
            if train.save_every and done % train.save_every == 0 and done < len(plan):
                last_good = save_checkpoint(acc, recipe, unwrapped, output_dir, done, train.keep_checkpoints)
            if totals["stop"] > 0 and done < len(plan):  # any process was signalled: all stop at this step
                bar.close()
                if last_good is None or last_good.name != step_dir(output_dir, done).name:
                    last_good = save_checkpoint(
                        acc, recipe, unwrapped, output_dir, done, train.keep_checkpoints
                    )
                raise RunInterrupted(stop.signum or signal.SIGTERM, last_good)
    bar.close()
    final_dir = output_dir / "final"
    if acc.is_main_process:
        publish_config(output_dir)
    if save_final and acc.is_main_process:
        with atomic_dir(final_dir) as tmp:
            recipe.save_model(unwrapped, tmp)
    acc.wait_for_everyone()
    return LoopResult(final_dir, len(plan), metrics)


def finish(
    acc, result: LoopResult, output_dir: Path, eval_metrics: dict, flat_metrics: dict[str, float]
) -> TrainResult:
    """Log and write the final evaluation (main process), close trackers; the recipe's result."""
    if flat_metrics:
        result.metrics.log(result.steps, **{f"eval_{k}": v for k, v in flat_metrics.items()})
    if eval_metrics and acc.is_main_process:
        atomic_write_text(output_dir / "eval_results.json", json.dumps(eval_metrics, indent=2))
    if acc.trackers:
        acc.end_training()
    return TrainResult(result.final_dir, eval_metrics, result.steps, Path(output_dir) / "metrics.jsonl")
