"""The ``genpref`` command line: typed dataclass configs, ``--config FILE.yaml``, dotted overrides.

    genpref rm train --config configs/rm_gpm_minilm.yaml --train.epochs 2
    genpref rm eval  --model_path runs/rm/final --data eval.jsonl --output results.json
    genpref rm score --model runs/rm/final --data rows.jsonl --output scores.jsonl
    genpref serve --model runs/rm/final --port 8000
    genpref demo

Every subcommand is also a Python function (see the README). Errors caused by input or config
print one clear message and exit with status 2; no traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from dataclasses import fields

from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

from genpref.cli_checks import check_config_files, check_outputs, short_parse_error
from genpref.errors import DeprecatedName, GenprefError

set_parsing_settings(docstring_parse_attribute_docstrings=True)


class _Parser(ArgumentParser):
    """jsonargparse's parser with a short error: the offending option and its valid values, no usage dump."""

    def error(self, message: str, ex: Exception | None = None):
        prog = self.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {short_parse_error(message, self)}\n")
        sys.stderr.write(f"  run '{prog} --help' for every option\n")
        self.exit(2)


def _dataclass_parser(cls, prog: str) -> ArgumentParser:
    parser = _Parser(
        prog=prog, description=(cls.__doc__ or "").strip(), exit_on_error=True, allow_abbrev=False
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_class_arguments(cls, as_group=False)
    return parser


def _build(parser: ArgumentParser, namespace, cls):
    namespace = namespace.clone()
    namespace.pop("config", None)
    init = parser.instantiate(namespace)
    return cls(**{f.name: getattr(init, f.name) for f in fields(cls)})


def commands() -> dict[tuple[str, ...], tuple[type, str]]:
    """Subcommand words → (argument dataclass, one-line help), from ``genpref.commands.COMMANDS``."""
    from genpref.commands import COMMANDS

    return {c.words: (c.config, c.help) for c in COMMANDS}


def build_parser(key: tuple[str, ...]) -> ArgumentParser:
    cls, _ = commands()[key]
    return _dataclass_parser(cls, "genpref " + " ".join(key))


def _positional(key: tuple[str, ...]) -> tuple[str, ...]:
    """Fields a command takes as leading positional arguments (default: ``data``, when it has that field)."""
    from genpref.commands import BY_WORDS

    command = BY_WORDS[key]
    if command.positional is not None:
        return command.positional
    return ("data",) if "data" in {f.name for f in fields(command.config)} else ()


def _usage() -> str:
    lines = ["usage: genpref COMMAND [--config FILE.yaml] [--section.field VALUE ...]", "", "commands:"]
    lines += [f"  {' '.join(key):<12} {text}" for key, (_, text) in commands().items()]
    lines += ["", "Run 'genpref COMMAND --help' for every option of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    main_process = os.environ.get("RANK", "0") == "0"  # under accelerate/torchrun only rank 0 reports
    logging.basicConfig(
        level=logging.INFO if main_process else logging.WARNING, format="%(message)s", stream=sys.stderr
    )
    if not main_process:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for noisy in ("transformers", "accelerate", "datasets", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _show_deprecations_plainly()
    table = commands()
    key = next((k for k in sorted(table, key=len, reverse=True) if tuple(argv[: len(k)]) == k), None)
    if key is None:
        if not argv or argv[0] in ("-h", "--help"):
            print(_usage())
            return 0
        print(f"genpref: error: unknown command '{' '.join(argv[:2])}'\n\n{_usage()}", file=sys.stderr)
        return 2
    parser = build_parser(key)
    rest = argv[len(key) :]
    positional = _positional(key)
    leading = []
    while rest and not rest[0].startswith("-") and len(leading) // 2 < len(positional):
        leading += [f"--{positional[len(leading) // 2]}", rest.pop(0)]
    rest = (
        leading + rest
    )  # `genpref data cycles FILE` == `--data FILE`; `rm compare A B` == `--model_a A --model_b B`
    try:
        check_config_files(rest)  # YAML errors with file and line, before jsonargparse sees the file
    except GenprefError as exc:
        print(f"genpref: error: {exc}", file=sys.stderr)
        return 2
    namespace = parser.parse_args(rest)  # exits 2 with a short message on unknown/invalid options
    from genpref import commands as command_impl

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # schedulers stop jobs with SIGTERM
    try:
        config = _build(parser, namespace, table[key][0])
        check_outputs(config)  # every output_dir / output writable, before any work
        command_impl.run(key, config)
    except GenprefError as exc:
        print(f"genpref: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the user named could not be read or written
        print(f"genpref: error: {_os_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        where = getattr(exc, "checkpoint", None)
        saved = f"saved checkpoint {where}; " if where else ""
        print(
            f"genpref: interrupted by {signal.Signals(signum).name}; {saved}"
            "rerun the same command with --resume true to continue from the last checkpoint",
            file=sys.stderr,
        )
        return 128 + signum
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _format_warning(message, category, filename, lineno, line=None) -> str:
    if issubclass(category, DeprecatedName):  # ``genpref: warning: ...``, not Python's file:line form
        return f"genpref: warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)


_python_format_warning = warnings.formatwarning


def _show_deprecations_plainly() -> None:
    """Print deprecated option names (``genpref.errors.DeprecatedName``) as one plain line."""
    warnings.formatwarning = _format_warning


def _raise_interrupt(signum, frame) -> None:
    """SIGTERM outside a training loop: stop like Ctrl-C (training loops checkpoint first, see train.loop)."""
    exc = KeyboardInterrupt()
    exc.signum = signum
    raise exc


def _os_error_text(exc: OSError) -> str:
    path = exc.filename or "a file"
    why = exc.strerror or str(exc)
    return (
        f"{path}: {why}.\n  fix: check that the path exists and is the kind expected (a file, not a folder), "
        "and that you may read (inputs) or write (outputs) it"
    )


if __name__ == "__main__":
    sys.exit(main())
