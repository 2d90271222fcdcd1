"""``genpref selfplay``: SPPO / GPO iterations as resumable stages.

For each iteration t (folder ``iter-t/``), each stage saves its outputs before the next starts:

1. generate: K samples per prompt from π_t, with log π_t(y|x) recorded during sampling;
2. judge: the K×K preference matrices from the judge (K backbone forwards per prompt for BT/GPM);
3. build: one training row per sample (or best/worst per prompt) with its target:
   SPPO P̂(y_i ≻ π_t) − ½, P̂ = mean_j P(y_i ≻ y_j); GPO s(y_i ≻ π_t) = mean_j s(y_i ≻ y_j) with s the
   preference logit, P = σ(s) (for a judge with temperature τ: its score / τ, as the paper's code
   divides by τ); j = i included by default, as in the paper's code; its term is ½ resp. 0;
4. train: π_{t+1} from π_t with the square loss, on the shared training loop (checkpointed, resumable);
5. evaluate: win-rate of π_{t+1} against π_0 and π_t on held-out prompts, judged by the same model,
   with a 95% interval, mean lengths and a length-controlled win-rate; one row per iteration in
   ``results.jsonl`` and a PNG plot.

Killing the process anywhere and rerunning the same command continues from the last finished stage
(and inside training, from its last checkpoint). A config change that invalidates a finished stage is
reported with the changed values.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from genpref.data.encode import Encoded
from genpref.errors import ConfigError
from genpref.eval.stats import length_controlled_winrate, mean_confidence_interval, wilson_interval
from genpref.models.backbone import resolve_backbone
from genpref.policy.sequences import resolve_packing
from genpref.selfplay.config import SelfPlayConfig
from genpref.selfplay.generate import Sample, TransformersGenerator
from genpref.selfplay.prompts import as_user_turn, fit_prompts, load_prompts, with_instruction
from genpref.selfplay.recipe import SelfPlayItem, SelfPlayRecipe
from genpref.selfplay.stages import Stage, read_jsonl, write_jsonl

log = logging.getLogger("genpref")


def _generator(cfg: SelfPlayConfig, policy_path: str, sampling=None):
    from genpref.policy.model import load_policy
    from genpref.train.device import default_device, place

    if cfg.generator == "vllm":
        from genpref.selfplay.vllm_backend import VLLMGenerator

        return VLLMGenerator(policy_path, sampling or cfg.sampling)
    model, tokenizer = load_policy(
        policy_path, trust_remote_code=cfg.policy.trust_remote_code, attention=cfg.policy.attention
    )
    return TransformersGenerator(place(model, default_device()), tokenizer, sampling or cfg.sampling)


def generate_stage(
    cfg: SelfPlayConfig, folder: Path, t: int, policy_path: str, prompts: list, parent: str
) -> list:
    stage = Stage(
        folder,
        "generate",
        {
            "policy": policy_path,
            "parent": parent,
            "k": cfg.k,
            "seed": cfg.seed,
            "sampling": asdict(cfg.sampling),
            "prompts": [cfg.prompts.train, len(prompts), cfg.prompts.max_prompt_tokens, cfg.prompts.chat]
            + ([cfg.prompts.instruction] if cfg.prompts.instruction else []),
        },
    )
    path = folder / "generations.jsonl"
    if not stage.done():
        samples = _generator(cfg, policy_path).generate(
            policy_prompts(cfg, prompts), cfg.k, seed=cfg.seed + 7919 * t
        )
        write_jsonl(
            path, [{"prompt": p, "samples": [asdict(s) for s in ss]} for p, ss in zip(prompts, samples)]
        )
        stage.finish(n_prompts=len(prompts), k=cfg.k)
    return [[Sample(**s) for s in row["samples"]] for row in read_jsonl(path)], stage.key


JUDGE_MATRICES = ["prob_matrix", "score_matrix", "logit_matrix"]
"""Per prompt, K×K: P(y_i ≻ y_j | x); the model's score s (GPM/BT: before the temperature τ; PairPM: the
classifier logit); and the logit s/τ with P = σ(s/τ), which GPO uses as its preference score."""


def judge_stage(cfg: SelfPlayConfig, folder: Path, prompts: list, samples: list, parent: str, judge) -> tuple:
    stage = Stage(folder, "judge", {"judge": str(cfg.judge), "parent": parent, "matrices": JUDGE_MATRICES})
    path = folder / "judgments.jsonl"
    if not stage.done():
        rows, forwards = [], 0
        tau = judge().config.temperature
        for prompt, ss in zip(prompts, samples):
            r = judge().rank(prompt, [s.text for s in ss])
            forwards += r.forwards
            rows.append(
                {
                    "prob_matrix": r.prob_matrix.tolist(),
                    "score_matrix": r.score_matrix.tolist(),
                    "logit_matrix": (r.score_matrix / tau).tolist(),
                }
            )
        write_jsonl(path, rows)
        stage.finish(judge_forwards=forwards)
    return read_jsonl(path), stage.key


def targets(cfg: SelfPlayConfig, judgment: dict) -> list[float]:
    """Per-sample targets from one prompt's K×K matrices (see module docstring)."""
    from genpref.losses.selfplay import selfplay_target

    matrix = torch.tensor(judgment["prob_matrix" if cfg.algorithm == "sppo" else "logit_matrix"])  # (K, K)
    return selfplay_target(matrix, cfg.algorithm, cfg.include_self, cfg.target_clip).tolist()


def loss_weights(
    cfg: SelfPlayConfig, samples: list[tuple[int, list[int], float, int]], prob_matrices: list
) -> list[float]:
    """Per-sample loss weights by ``cfg.weighting`` (``genpref.losses.selfplay.selfplay_weights``).

    Args:
        samples: (prompt index, response token ids, log π_t, index among the prompt's K samples) per
            training row; the same text means the same prompt index and token ids.
        prob_matrices: per prompt, its (K, K) judge P matrix (read only by ``judged_distinct``).
    """
    from genpref.losses.selfplay import judge_equivalence_classes, selfplay_weights

    keys = [(p, tuple(ids)) for p, ids, _, _ in samples]
    classes = None
    if cfg.weighting == "judged_distinct":
        prompts = {p for p, *_ in samples}
        per_prompt = {p: judge_equivalence_classes(prob_matrices[p], cfg.judge_tolerance) for p in prompts}
        classes = [per_prompt[p][i] for p, _, _, i in samples]
    return selfplay_weights(
        cfg.weighting, keys, [lp for _, _, lp, _ in samples], cfg.k, cfg.weight_clip, classes
    )


def weights_and_targets(
    cfg: SelfPlayConfig, samples: list[tuple[int, list[int], float, int]], prob_matrices: list, targets: list
) -> tuple[list[float], list[float]]:
    """The training rows' loss weights (:func:`loss_weights`, same ``samples`` layout) and their targets,
    centred per prompt with those weights when ``cfg.center_targets`` (``genpref.losses.selfplay.center_targets``)."""
    from genpref.losses.selfplay import center_targets

    weights = loss_weights(cfg, samples, prob_matrices)
    if cfg.center_targets:
        targets = center_targets(targets, weights, [p for p, *_ in samples])
    return weights, list(targets)


def build_stage(cfg, folder: Path, prompts: list, samples: list, judgments: list, tokenizer, parent: str):
    """Training rows with their targets, and the iteration's η (``cfg.eta``, or from the target scale
    with ``target_nats``). Returns (items, stage key, summary: η, target distribution, SPPO/GPO agreement)."""
    from genpref.selfplay.diagnostics import eta_from_targets, summarize_targets, target_agreement
    from genpref.selfplay.generate import prompt_ids

    stage = Stage(
        folder,
        "build",
        {
            "algorithm": cfg.algorithm,
            "include_self": cfg.include_self,
            "selection": cfg.selection,
            "weighting": [cfg.weighting, cfg.weight_clip]
            + ([cfg.judge_tolerance] if cfg.weighting == "judged_distinct" else [])
            + (["centred"] if cfg.center_targets else []),
            "target_clip": cfg.target_clip,
            "eta": cfg.eta,
            "target_nats": cfg.target_nats,
            "prompts": [cfg.prompts.chat, cfg.prompts.instruction],
            "parent": parent,
        },
    )
    path = folder / "train_rows.jsonl"
    if not stage.done():
        rows = []
        for p_index, (prompt, ss, jd) in enumerate(zip(prompts, samples, judgments)):
            tg = targets(cfg, jd)
            chosen = range(len(ss))
            if cfg.selection == "best_worst":
                chosen = sorted({max(chosen, key=tg.__getitem__), min(chosen, key=tg.__getitem__)})
            ids = prompt_ids(tokenizer, policy_prompts(cfg, [prompt])[0])
            for i in chosen:
                rows.append(
                    {
                        "prompt_ids": ids,
                        "token_ids": ss[i].token_ids,
                        "ref_logp": ss[i].logp,
                        "target": tg[i],
                        "prompt_index": p_index,
                        "sample_index": i,
                    }
                )
        drawn = [(r["prompt_index"], r["token_ids"], r["ref_logp"], r["sample_index"]) for r in rows]
        weights, row_targets = weights_and_targets(
            cfg, drawn, [jd["prob_matrix"] for jd in judgments], [r["target"] for r in rows]
        )
        for r, w, g in zip(rows, weights, row_targets):
            r["weight"], r["target"] = w, g
        all_targets = [r["target"] for r in rows]
        eta = cfg.eta if cfg.target_nats is None else eta_from_targets(all_targets, cfg.target_nats, cfg.eta)
        write_jsonl(path, rows)
        stage.finish(
            rows=len(rows),
            eta=eta,
            targets=summarize_targets(all_targets),
            sppo_gpo_target_corr=target_agreement(
                [j["prob_matrix"] for j in judgments],
                [j["logit_matrix"] for j in judgments],
                cfg.include_self,
            ),
        )
    summary = stage.summary()
    items = [
        SelfPlayItem(
            Encoded(r["prompt_ids"] + r["token_ids"], len(r["prompt_ids"]), False),
            r["ref_logp"],
            r["target"],
            r["prompt_index"],
            r.get("weight", 1.0),
        )
        for r in read_jsonl(path)
        if r["token_ids"]
    ]
    return items, stage.key, summary


def train_stage(
    cfg: SelfPlayConfig, folder: Path, policy_path: str, items: list, parent: str, eta: float
) -> tuple[str, str]:
    from genpref.models.lora import apply_lora
    from genpref.policy.model import load_policy
    from genpref.train.device import check_trainable_attention
    from genpref.train.loop import start_run

    config = {
        "optim": asdict(cfg.optim),
        "train": asdict(cfg.train),
        "eta": eta,
        "length_normalized": cfg.length_normalized,
        "engine": asdict(cfg.engine),
        "parent": parent,
    }
    stage = Stage(folder, "train", config)
    final = folder / "train" / "final"
    if not stage.done():
        out = folder / "train"
        acc, resume_from = start_run(config, cfg.train, out, resume=True)
        lm, tokenizer = load_policy(
            policy_path, trust_remote_code=cfg.policy.trust_remote_code, attention=cfg.policy.attention
        )
        check_trainable_attention(lm, acc.device)
        if cfg.train.finetune == "lora":
            lm = apply_lora(lm, cfg.train.lora)
        result = train_on_items(cfg, acc, lm, tokenizer, items, out, resume_from, eta=eta)
        if acc.is_main_process:
            stage.finish(steps=result.steps)
        acc.wait_for_everyone()
    return str(final), stage.key


def train_on_items(
    cfg: SelfPlayConfig, acc, lm, tokenizer, items: list, out: Path, resume_from, save_final=True, eta=None
):
    """One iteration's square-loss regression of ``lm`` (in place) on ``items`` with the shared loop
    (η: ``eta``, default ``cfg.eta``). Repeated samples train as one weighted row (``merge_duplicates``:
    the same loss, fewer forwards)."""
    from dataclasses import replace

    from genpref.policy.logprobs import PolicyLogps
    from genpref.selfplay.recipe import merge_duplicates
    from genpref.train.loop import run_loop

    items = merge_duplicates(items)
    eta = cfg.eta if eta is None else eta
    if cfg.solver == "gauss_newton":
        return fit_gauss_newton(cfg, acc, lm, tokenizer, items, out, save_final, eta)
    line_search = cfg.solver == "line_search"
    if line_search:
        _single_process(acc, "line_search")
        params = [p for p in lm.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in params]  # θ_t
    recipe = SelfPlayRecipe(
        items,
        tokenizer,
        eta,
        cfg.length_normalized,
        resolve_packing(cfg.engine.packing, lm),
        share_prompt=cfg.engine.share_prompt,
    )
    train = cfg.train
    groups = None
    if cfg.engine.share_prompt:  # a prompt's samples share a batch, so its forward runs once
        train = replace(train, group_by_prompt=True, group_by_length=False)
        groups = [tuple(it.seq.input_ids[: it.seq.prompt_len]) for it in items]
    result = run_loop(
        acc,
        PolicyLogps(lm, cfg.engine.logprob_chunk, compile=cfg.engine.compile),
        recipe,
        len(items),
        train,
        cfg.optim,
        out,
        resume_from,
        desc=f"train {cfg.algorithm}",
        groups=groups,
        lengths=[len(it.seq.input_ids) for it in items],
        save_final=save_final and not line_search,
    )
    if line_search:
        from genpref.selfplay.line_search import finish_line_search

        result = finish_line_search(cfg, acc, lm, tokenizer, items, eta, params, before, result, save_final)
    return result


def _single_process(acc, solver: str) -> None:
    if acc.num_processes > 1:
        raise ConfigError(
            f"selfplay solver {solver} runs in one process; this run has {acc.num_processes}.\n"
            "  fix: launch without accelerate's multi-process launcher, or use solver: gradient"
        )


def fit_gauss_newton(
    cfg: SelfPlayConfig, acc, lm, tokenizer, items: list, out: Path, save_final: bool, eta: float
):
    """``solver: gauss_newton``: ``cfg.gauss_newton_steps`` damped Gauss-Newton steps on ``items`` (in place);
    a LoopResult like ``run_loop``'s, its metrics (one line per step) in ``out/metrics.jsonl``."""
    from genpref.atomic_io import atomic_dir
    from genpref.policy.logprobs import PolicyLogps
    from genpref.policy.model import save_policy
    from genpref.policy.sequences import make_batch
    from genpref.selfplay.gauss_newton import gauss_newton_step
    from genpref.train.loop import LoopResult, publish_config
    from genpref.train.metrics import MetricsLog

    _single_process(acc, "gauss_newton")

    model = PolicyLogps(lm, cfg.engine.logprob_chunk).to(acc.device)
    batch = make_batch(
        [it.seq for it in items], packing=False, pad_id=tokenizer.pad_token_id, device=acc.device
    )
    metrics = MetricsLog(out / "metrics.jsonl", acc.is_main_process)
    for step in range(1, cfg.gauss_newton_steps + 1):
        stats = gauss_newton_step(
            model, lm, batch, items, eta, cfg.gauss_newton_damping, cfg.length_normalized
        )
        metrics.log(step, **stats)
    publish_config(out)
    if save_final:
        with atomic_dir(out / "final") as tmp:
            save_policy(lm, tokenizer, tmp)
    return LoopResult(out / "final", cfg.gauss_newton_steps, metrics)


def sequence_logps(cfg: SelfPlayConfig, policy_path: str, items: list) -> list[float]:
    """log π(y|x) of each item's response under the policy at ``policy_path`` (no grad; the batched
    reference pass of ``genpref.policy.reference``)."""
    from genpref.policy.model import load_policy
    from genpref.policy.reference import compute_logps
    from genpref.train.device import default_device, place

    lm, tokenizer = load_policy(
        policy_path, trust_remote_code=cfg.policy.trust_remote_code, attention=cfg.policy.attention
    )
    lm = place(lm, default_device())
    logps, _ = compute_logps(
        lm,
        [it.seq for it in items],
        batch_size=cfg.train.batch_size,
        packing=resolve_packing(cfg.engine.packing, lm),
        pad_id=tokenizer.pad_token_id,
        progress=False,
        share_prompt=cfg.engine.share_prompt,  # each prompt once for its K samples, as in training
    )
    return logps.tolist()


def fit_stage(cfg: SelfPlayConfig, folder: Path, new_path: str, items: list, eta: float, parent: str) -> dict:
    """How π_{t+1} fitted the iteration's regression, and KL estimates to π_t (``genpref.selfplay.diagnostics``),
    from one no-grad pass of π_{t+1} over the training samples. Written to ``fit.json``."""
    from genpref.selfplay.diagnostics import fit_diagnostics, kl_estimates

    stage = Stage(folder, "fit", {"policy": new_path, "parent": parent})
    path = folder / "fit.json"
    if not stage.done():
        new = sequence_logps(cfg, new_path, items)
        rho = [n - it.ref_logp for n, it in zip(new, items)]
        targets_ = [it.target for it in items]
        fit = fit_diagnostics(rho, targets_, eta) | kl_estimates(rho, [it.prompt_index for it in items])
        fit["exact_kl"] = cfg.sampling.temperature == 1.0 and cfg.sampling.top_p >= 1.0
        from genpref.atomic_io import atomic_write_text

        atomic_write_text(path, json.dumps(fit, indent=2))
        stage.finish()
    return json.loads(path.read_text())


def eval_responses(cfg, folder: Path, name: str, policy_path: str, prompts: list) -> list[Sample]:
    from genpref.selfplay.generate import SamplingConfig

    sampling = SamplingConfig(
        temperature=cfg.eval.temperature,
        top_p=cfg.sampling.top_p,
        max_new_tokens=cfg.eval.max_new_tokens,
        batch_size=cfg.sampling.batch_size,
    )
    stage = Stage(
        folder,
        f"eval_{name}",
        {
            "policy": policy_path,
            "sampling": asdict(sampling),
            "prompts": [cfg.prompts.eval, len(prompts), cfg.prompts.chat]
            + ([cfg.prompts.instruction] if cfg.prompts.instruction else []),
            "seed": cfg.seed,
        },
    )
    path = folder / f"eval_{name}.jsonl"
    if not stage.done():
        out = _generator(cfg, policy_path, sampling).generate(
            policy_prompts(cfg, prompts), 1, seed=cfg.seed + 104729
        )
        write_jsonl(path, [asdict(s[0]) for s in out])
        stage.finish()
    return [Sample(**row) for row in read_jsonl(path)]


def winrate(judge, prompts: list, new: list[Sample], old: list[Sample]) -> dict:
    """P(new ≻ old | x) per prompt, averaged; 95% intervals; mean lengths (tokens) and the share of
    responses cut at the token cap (no EOS); length-controlled win-rate."""
    probs = judge().prob(prompts, [s.text for s in new], [s.text for s in old]).double()  # (N,)
    mean, low, high = mean_confidence_interval(probs.tolist())
    hard = float((probs > 0.5).sum()) + 0.5 * float((probs == 0.5).sum())
    wl, wh = wilson_interval(hard, len(probs))
    len_new = [len(s.token_ids) for s in new]
    len_old = [len(s.token_ids) for s in old]
    lc = length_controlled_winrate(probs.tolist(), [a - b for a, b in zip(len_new, len_old)])
    return {
        "winrate": mean,
        "ci_low": low,
        "ci_high": high,
        "hard_winrate": hard / len(probs),
        "hard_ci": [wl, wh],
        "lc_winrate": lc["lc_winrate"],
        "mean_len_new": sum(len_new) / len(new),
        "mean_len_old": sum(len_old) / len(old),
        "cap_share_new": sum(not s.finished for s in new) / len(new),
        "cap_share_old": sum(not s.finished for s in old) / len(old),
        "n": len(probs),
    }


def iteration_line(row: dict) -> str:
    """One printed line per iteration: η, the fit, KL and (when evaluated) the win-rates."""
    fit, tg = row["fit"], row["targets"]
    text = (
        f"iteration {row['iteration']}: η {row['eta']:.3g} (target std {tg['std']:.3g}); fit corr "
        f"{fit['corr']:.2f}, slope {fit['slope']:.2f}; KL(π_t+1‖π_t) ≈ {fit['kl_new_old']:.3g} nats"
    )
    if "vs_policy0" in row:
        w = row["vs_policy0"]
        text += (
            f"; win-rate vs π_0 {w['winrate']:.3f} [{w['ci_low']:.3f}, {w['ci_high']:.3f}], LC {w['lc_winrate']:.3f}, "
            f"vs π_t {row['vs_previous']['winrate']:.3f}; mean length {w['mean_len_new']:.1f} (π_0 "
            f"{w['mean_len_old']:.1f}), at cap {w['cap_share_new']:.0%} (π_0 {w['cap_share_old']:.0%})"
        )
        for path, j in row.get("judges", {}).items():
            text += f"; judge {Path(path).parent.name or path}: vs π_0 {j['vs_policy0']['winrate']:.3f} [{j['vs_policy0']['ci_low']:.3f}, {j['vs_policy0']['ci_high']:.3f}]"
    return text


def policy_prompts(cfg: SelfPlayConfig, prompts: list) -> list:
    """The prompts as the policy sees them: ``prompts.instruction`` appended (to the last user turn of
    a conversation), plain text as a user turn when ``prompts.chat``."""
    if cfg.prompts.instruction:
        prompts = [with_instruction(p, cfg.prompts.instruction) for p in prompts]
    return [as_user_turn(p) for p in prompts] if cfg.prompts.chat else list(prompts)


def training_prompts(cfg: SelfPlayConfig) -> list:
    """The iteration's training prompts, as loaded (see ``policy_prompts`` for the policy's view):
    the first ``prompts.limit``, skipping those over ``prompts.max_prompt_tokens``."""
    if cfg.prompts.max_prompt_tokens is None:
        return load_prompts(cfg.prompts.train, cfg.prompts.limit, cfg.prompts.split)
    from genpref.models.backbone import load_tokenizer

    tokenizer = load_tokenizer(
        resolve_backbone(cfg.policy.model), trust_remote_code=cfg.policy.trust_remote_code
    )
    prompts, skipped = fit_prompts(
        load_prompts(cfg.prompts.train, None, cfg.prompts.split),
        tokenizer,
        cfg.prompts.max_prompt_tokens,
        cfg.prompts.limit,
        chat=cfg.prompts.chat,
    )
    if not prompts:
        raise ConfigError(
            f"no training prompt in {cfg.prompts.train} fits prompts.max_prompt_tokens={cfg.prompts.max_prompt_tokens}.\n"
            "  fix: raise prompts.max_prompt_tokens or set it to null"
        )
    if skipped:
        print(
            f"prompts: skipped {skipped} training prompts longer than {cfg.prompts.max_prompt_tokens} tokens "
            f"(prompts.max_prompt_tokens); using {len(prompts)}"
        )
    return prompts


def run_selfplay(cfg: SelfPlayConfig) -> list[dict]:
    """Run (or resume) all iterations; returns the per-iteration evaluation rows."""
    from genpref.models.preference_model import read_checkpoint_meta
    from genpref.train.run_dir import claim_run_dir

    if cfg.judge is None:
        raise ConfigError(
            "judge is required.\n  fix: train one with 'genpref rm train' and pass its final/ folder as --judge"
        )
    judge_type = read_checkpoint_meta(cfg.judge)["model"].get("type")
    if cfg.algorithm == "gpo" and judge_type not in ("bt", "gpm"):
        raise ConfigError(
            f"algorithm=gpo needs a BT or GPM judge (an antisymmetric score s(y ≻ y')); {cfg.judge} is a "
            f"{judge_type} model.\n  fix: use --algorithm sppo (any judge), or a BT/GPM judge"
        )
    with claim_run_dir(cfg.output_dir, resume=True):  # a rerun resumes finished stages
        return _run_selfplay(cfg)


def _run_selfplay(cfg: SelfPlayConfig) -> list[dict]:
    out = Path(cfg.output_dir)
    prompts = training_prompts(cfg)
    eval_prompts = (
        load_prompts(cfg.prompts.eval, cfg.prompts.eval_limit, cfg.prompts.split) if cfg.eval.enabled else []
    )
    from accelerate import PartialState

    from genpref.models.backbone import load_tokenizer

    # Under `accelerate launch`, generation, judging, building and evaluation run on the main process
    # (the others wait, then read the saved stage outputs); every process trains together.
    state = PartialState(cpu=not torch.cuda.is_available())  # as Accelerator() resolves it (gloo on CPU)
    cache: dict = {}

    def load_judge(path: str):
        if path not in cache:  # on this process's device (the first GPU when there is one)
            from genpref.models.preference_model import PreferenceModel

            cache[path] = PreferenceModel.from_pretrained(path, device=state.device)
        return cache[path]

    def judge():
        return load_judge(cfg.judge)

    policy0 = resolve_backbone(cfg.policy.model)
    policy_path, parent, rows = policy0, "start", []
    with state.main_process_first():
        base0 = eval_responses(cfg, out, "policy0", policy0, eval_prompts) if eval_prompts else []
    prev = base0
    for t in range(cfg.iterations):
        folder = out / f"iter-{t}"
        log.info(f"iteration {t}: generate → judge → build → train → fit → evaluate in {folder}")
        with state.main_process_first():
            samples, key = generate_stage(cfg, folder, t, policy_path, prompts, parent)
            judgments, key = judge_stage(cfg, folder, prompts, samples, key, judge)
            tokenizer = load_tokenizer(policy_path, trust_remote_code=cfg.policy.trust_remote_code)
            items, key, built = build_stage(cfg, folder, prompts, samples, judgments, tokenizer, key)
        new_path, parent = train_stage(cfg, folder, policy_path, items, key, built["eta"])
        row: dict = {"iteration": t + 1, "eta": built["eta"], "targets": built["targets"]}
        row["sppo_gpo_target_corr"] = built.get("sppo_gpo_target_corr")
        with state.main_process_first():
            row["fit"] = fit_stage(cfg, folder, new_path, items, built["eta"], parent)
        if eval_prompts:
            with state.main_process_first():
                new = eval_responses(cfg, folder, "policy_next", new_path, eval_prompts)
                row["vs_policy0"] = winrate(judge, eval_prompts, new, base0)
                row["vs_previous"] = winrate(judge, eval_prompts, new, prev)
                row["judges"] = {
                    path: {
                        "vs_policy0": winrate(lambda p=path: load_judge(p), eval_prompts, new, base0),
                        "vs_previous": winrate(lambda p=path: load_judge(p), eval_prompts, new, prev),
                    }
                    for path in cfg.eval.judges
                }
            prev = new
        rows.append(row)
        print(iteration_line(row))
        policy_path = new_path
    if rows and state.is_main_process:
        write_jsonl(out / "results.jsonl", rows)
        if eval_prompts:
            from genpref.selfplay.plots import plot_iterations

            print(f"plot: {plot_iterations(rows, out / 'selfplay.png')}")
    if state.is_main_process:
        (out / "final_policy.txt").write_text(policy_path + "\n")
    print(f"final policy: {policy_path}")
    return rows
