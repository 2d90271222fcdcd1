"""The command table: every ``genpref`` subcommand as (words, config class, help, entry function).

``genpref.cli`` parses ``COMMANDS``' config classes and calls their entry functions; every entry is also
a plain Python function taking that config. Entry functions import their recipe when called, so
``genpref --help`` stays instant. A new command is one ``Command`` row here (see docs/architecture.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genpref.args import (
    CompareArgs,
    DataCyclesArgs,
    DataCyclicArgs,
    DemoArgs,
    EvalArgs,
    ExportArgs,
    ScoreArgs,
)
from genpref.cyclic.experiment import CyclicBenchArgs
from genpref.errors import ConfigError, DataError
from genpref.selfplay.config import SelfPlayConfig
from genpref.selfplay.nash import NashBenchArgs
from genpref.serve.config import ServeArgs
from genpref.train.po_config import POTrainConfig, SFTConfig
from genpref.train.rm_config import RMTrainConfig

log = logging.getLogger("genpref")


def build_cyclic_files(args: DataCyclicArgs):
    from genpref.cyclic.builder import build_cyclic, write_datasets

    report = build_cyclic(
        args.input,
        max_cycles_per_prompt=args.max_cycles_per_prompt,
        seed=args.seed,
        transitive_triples=args.transitive_triples,
        cycle_length=args.cycle_length,
    )
    print(report.summary())
    for name, path in write_datasets(report.datasets, args.output_dir).items():
        print(f"wrote {path} ({len(report.datasets[name])} comparisons)")
    return report


def cycle_report_file(args: DataCyclesArgs):
    from genpref.cyclic.builder import comparisons_from_file
    from genpref.cyclic.graph import analyze_comparisons

    comparisons = comparisons_from_file(args.data, split=args.split)
    if not comparisons:
        raise DataError(
            "no comparisons (the file is empty, or no row has two responses with different scores)",
            source=str(args.data),
            fix="pass a file of pairwise rows, scored ranking rows or rated rows (see the README's Data section)",
        )
    report = analyze_comparisons(comparisons, exact_max_items=args.exact_max_items)
    print(report.summary())
    if args.output:
        from genpref.atomic_io import atomic_write_text

        atomic_write_text(Path(args.output), json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.output}")
    return report


def _eval_rows(args: EvalArgs):
    from genpref.eval.judge_eval import load_eval_rows

    rejects = args.rejects or (
        str(Path(args.output).with_suffix(".rejects.jsonl")) if args.output else "rejects.jsonl"
    )
    data = load_eval_rows(
        args.data,
        split=args.split,
        on_error=args.on_error,
        rejects_path=rejects,
        limit=args.limit,
        ranking=args.ranking,
    )
    log.info(f"{data.report.summary()} ({data.layout})")
    if not data.rows:
        report = data.report
        why = f"all {report.n_read} rows were rejected (reasons in {rejects})" if report.rejected else ""
        raise DataError(
            f"nothing to evaluate: {why or 'the data has no rows'}",
            source=str(args.data),
            fix="check that the file holds prompt/chosen/rejected rows, ranking rows or best-of-N rows (the "
            "rejects file gives each row's reason)",
        )
    return data


def _judge(model_dir: str, data, args: EvalArgs) -> dict:
    from genpref.eval.judge_eval import judge_rows
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.device import default_device

    model = PreferenceModel.from_pretrained(model_dir, device=default_device())
    kwargs = {}
    if data.layout == "rankings":
        kwargs = dict(
            pair_config=args.ranking,
            best_of=args.best_of,
            best_of_min_gap=args.best_of_min_gap,
            seed=args.seed,
        )
    results = judge_rows(model, data, args.batch_size, **kwargs)
    results["model"], results["data"] = str(model_dir), str(args.data)
    return results


def _write_json(path: str | None, results: dict) -> None:
    if path:
        from genpref.atomic_io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(results, indent=2))
        print(f"wrote {path}")


def evaluate_file(args: EvalArgs) -> dict:
    """Evaluate a checkpoint on a data file (pairs, rankings or best-of-N rows); optionally write JSON."""
    from genpref.eval.judge_report import format_eval

    results = _judge(args.model_path, _eval_rows(args), args)
    print(format_eval(results))
    _write_json(args.output, results)
    return results


def compare_files(args: CompareArgs) -> dict:
    """Evaluate two checkpoints on the same rows and test the difference; optionally write JSON."""
    from genpref.eval.judge_eval import compare_results
    from genpref.eval.judge_report import format_compare, format_eval

    data = _eval_rows(args)
    results = {name: _judge(path, data, args) for name, path in (("a", args.model_a), ("b", args.model_b))}
    for name, path in (("A", args.model_a), ("B", args.model_b)):
        print(f"--- {name}: {path}\n{format_eval(results[name.lower()])}")
    results["comparison"] = compare_results(results["a"], results["b"], n_boot=args.n_boot, seed=args.seed)
    print(format_compare(results["comparison"], args.model_a, args.model_b))
    _write_json(args.output, results)
    return results


def score_file(args: ScoreArgs) -> list[dict]:
    """Score comparison rows or rank multi-response rows; writes JSONL rows."""
    from genpref.data.load import load_preferences, load_rankings
    from genpref.data.readers import read_records
    from genpref.models.preference_model import PreferenceModel
    from genpref.train.device import default_device

    model = PreferenceModel.from_pretrained(args.model, device=default_device())
    first = next(iter(read_records(args.data, split=args.split)), None)
    if first is None:
        raise ConfigError(f"{args.data} has no rows")
    out = []
    if "responses" in first[2]:
        report = load_rankings(args.data, split=args.split, limit=args.limit)
        from tqdm.auto import tqdm

        for ex in tqdm(report.examples, desc="rank"):
            r = model.rank(ex.prompt, list(ex.responses), batch_size=args.batch_size)
            out.append(
                {
                    "origin": ex.origin,
                    "prob_matrix": r.prob_matrix.tolist(),
                    "score_vs_mixture": r.score_vs_mixture.tolist(),
                    "prob_vs_mixture": r.prob_vs_mixture.tolist(),
                    "ranking": r.score_vs_mixture.argsort(descending=True).tolist(),
                    "forwards": r.forwards,
                }
            )
    else:
        report = load_preferences(args.data, split=args.split, limit=args.limit)
        exs = report.examples
        if not exs:
            raise DataError(
                "no rows to score", source=str(args.data), fix="pass a file with at least one row"
            )
        score = model.score(
            [e.prompt for e in exs],
            [e.chosen for e in exs],
            [e.rejected for e in exs],
            batch_size=args.batch_size,
            progress=True,
        )
        prob = (score / model.config.temperature).sigmoid()
        out = [
            {"origin": e.origin, "score": s, "prob_chosen": p}
            for e, s, p in zip(exs, score.tolist(), prob.tolist())
        ]
    text = "".join(json.dumps(row) + "\n" for row in out)
    if args.output:
        from genpref.atomic_io import atomic_write_text

        atomic_write_text(Path(args.output), text)
        log.info(f"wrote {len(out)} rows to {args.output}")
    else:
        print(text, end="")
    return out


def rm_train(config: RMTrainConfig):
    from genpref.train.rm import train_preference_model

    result = train_preference_model(config)
    print(f"final model: {result.final_dir}")
    if result.eval_metrics:
        o = result.eval_metrics["overall"]
        print(
            f"eval accuracy {o['accuracy']:.4f}  mean P(chosen) {o['mean_prob_chosen']:.4f}  log-loss {o['log_loss']:.4f}"
        )
    return result


def po_train(config: POTrainConfig):
    from genpref.train.po import train_policy

    result = train_policy(config)
    print(f"final policy: {result.final_dir}")
    if result.eval_metrics:
        print("eval: " + "  ".join(f"{k} {v:.4f}" for k, v in result.eval_metrics.items()))
    return result


def sft(config: SFTConfig):
    from genpref.train.sft import train_sft

    result = train_sft(config)
    print(f"final policy: {result.final_dir}")
    return result


def selfplay(config: SelfPlayConfig):
    from genpref.selfplay.run import run_selfplay

    return run_selfplay(config)


def bench_cyclic(config: CyclicBenchArgs):
    from genpref.cyclic.experiment import run_cyclic_bench

    return run_cyclic_bench(config)


def bench_nash(config: NashBenchArgs):
    from genpref.selfplay.nash import run_nash_bench

    return run_nash_bench(config)


def rm_export(config: ExportArgs):
    from genpref.models.export import export_checkpoint

    path = export_checkpoint(config.model, config.output, config.format)
    print(f"wrote {path}")
    return path


def start_server(config: ServeArgs):
    try:
        from genpref.serve.app import serve
    except ImportError as exc:
        raise ConfigError(
            f"genpref serve needs fastapi and uvicorn ({exc}).\n  fix: pip install 'genpref[serve]'"
        ) from exc
    return serve(config)


def demo(config: DemoArgs):
    from genpref.demo import run_demo

    return run_demo(config)


@dataclass(frozen=True)
class Command:
    """One subcommand: ``genpref WORDS [--config FILE] [--field VALUE ...]`` → ``entry(config(...))``."""

    words: tuple[str, ...]
    config: type
    """Its argument dataclass (field docstrings become ``--help``)."""
    help: str
    """One line in ``genpref --help``."""
    entry: Callable[[Any], Any]
    positional: tuple[str, ...] | None = None
    """Fields taken as leading positional arguments (None: ``data`` when the config has that field)."""


COMMANDS: tuple[Command, ...] = (
    Command(("rm", "train"), RMTrainConfig, "train a BT, GPM or PairPM preference model", rm_train),
    Command(("rm", "eval"), EvalArgs, "evaluate a preference model on comparison data", evaluate_file),
    Command(
        ("rm", "compare"),
        CompareArgs,
        "two checkpoints on the same rows: McNemar and paired bootstrap",
        compare_files,
        positional=("model_a", "model_b"),
    ),
    Command(("rm", "score"), ScoreArgs, "score comparisons or rank multi-response rows", score_file),
    Command(
        ("rm", "export"),
        ExportArgs,
        "export a checkpoint for other tools (hf-seqcls, paper layout)",
        rm_export,
    ),
    Command(
        ("serve",), ServeArgs, "HTTP reward server: OpenRLHF /get_reward, /score, /prob, /rank", start_server
    ),
    Command(
        ("po", "train"),
        POTrainConfig,
        "offline preference optimisation: DPO, IPO, KTO, SimPO, ORPO, SPPO, ...",
        po_train,
    ),
    Command(("sft",), SFTConfig, "supervised fine-tuning on completions", sft),
    Command(
        ("selfplay",),
        SelfPlayConfig,
        "SPPO / GPO self-play iterations judged by a genpref preference model",
        selfplay,
    ),
    Command(
        ("bench", "cyclic"),
        CyclicBenchArgs,
        "BT vs GPM vs PairPM on cyclic preferences (paper Table 1)",
        bench_cyclic,
    ),
    Command(
        ("bench", "nash"),
        NashBenchArgs,
        "GPO/SPPO vs BT baselines on games with a known Nash equilibrium",
        bench_nash,
    ),
    Command(
        ("data", "cyclic"),
        DataCyclicArgs,
        "cyclic datasets from multi-aspect ratings (paper Table 1)",
        build_cyclic_files,
    ),
    Command(
        ("data", "cycles"),
        DataCyclesArgs,
        "3-cycles and the best accuracy of any scalar (BT) model",
        cycle_report_file,
    ),
    Command(("demo",), DemoArgs, "the main job on built-in defaults", demo),
)
"""Every subcommand, in the order ``genpref --help`` lists them."""

BY_WORDS: dict[tuple[str, ...], Command] = {c.words: c for c in COMMANDS}


def run(key: tuple[str, ...], config) -> Any:
    """Run the command ``key`` (its words) on ``config``."""
    if key not in BY_WORDS:
        raise ConfigError(f"unknown command {' '.join(key)}")
    return BY_WORDS[key].entry(config)
