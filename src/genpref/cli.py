"""The ``genpref`` command line: typed dataclass configs, ``--config FILE.yaml``, dotted overrides.

    genpref rm train --config configs/rm_gpm_minilm.yaml --train.epochs 2
    genpref rm eval  --model runs/rm/final --data eval.jsonl --output results.json
    genpref rm score --model runs/rm/final --data rows.jsonl --output scores.jsonl
    genpref demo

Every subcommand is also a Python function (see the README). Errors caused by input or config
print one clear message and exit with status 2; no traceback.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import fields

from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

from genpref.errors import GenprefError

set_parsing_settings(docstring_parse_attribute_docstrings=True)


def _dataclass_parser(cls, prog: str) -> ArgumentParser:
    parser = ArgumentParser(prog=prog, description=(cls.__doc__ or "").strip(), exit_on_error=True)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_class_arguments(cls, as_group=False)
    return parser


def _build(parser: ArgumentParser, namespace, cls):
    namespace = namespace.clone()
    namespace.pop("config", None)
    init = parser.instantiate(namespace)
    return cls(**{f.name: getattr(init, f.name) for f in fields(cls)})


def build_parser() -> tuple[ArgumentParser, dict]:
    from genpref.commands import DemoArgs, EvalArgs, ScoreArgs
    from genpref.train.rm_config import RMTrainConfig

    root = ArgumentParser(prog="genpref", description="General preference modeling and optimization.")
    sub = root.add_subcommands(dest="command")
    rm = ArgumentParser(description="Preference models: BT, GPM, PairPM.")
    sub.add_subcommand("rm", rm, help="train, evaluate and use preference models")
    rm_sub = rm.add_subcommands(dest="rm_command")
    specs = {
        ("rm", "train"): (RMTrainConfig, "genpref rm train"),
        ("rm", "eval"): (EvalArgs, "genpref rm eval"),
        ("rm", "score"): (ScoreArgs, "genpref rm score"),
        ("demo",): (DemoArgs, "genpref demo"),
    }
    parsers = {}
    for key, (cls, prog) in specs.items():
        parser = _dataclass_parser(cls, prog)
        parsers[key] = (parser, cls)
        if key[0] == "rm":
            rm_sub.add_subcommand(key[1], parser, help=(cls.__doc__ or "").strip().splitlines()[0])
    sub.add_subcommand("demo", parsers[("demo",)][0], help="the main job on built-in defaults")
    return root, parsers


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("transformers", "accelerate", "datasets", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root, parsers = build_parser()
    args = root.parse_args(argv)
    key = (args.command,) if args.command == "demo" else (args.command, args.rm.rm_command)
    parser, cls = parsers[key]
    namespace = args[args.command] if args.command == "demo" else args.rm[args.rm.rm_command]
    from genpref import commands

    try:
        config = _build(parser, namespace, cls)
        commands.run(key, config)
    except GenprefError as exc:
        print(f"genpref: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "genpref: interrupted; rerun with --resume to continue from the last checkpoint", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
