"""Checks the CLI makes for every command before any work starts (generic: no command is named here).

- ``short_parse_error``: jsonargparse's error as one line naming the option and its valid values;
- ``check_config_files``: ``--config`` YAML files parse, else the file and line of the error;
- ``check_outputs``: every ``output_dir`` (a folder) and ``output`` (a file) field of the parsed config
  can be written, so a run does not fail after the work is done.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

import yaml

from genpref.errors import ConfigError

_KEY = re.compile(r'^Parser key "([^"]+)":')
_GOT = re.compile(r"(?:Given value|Got value): (.*)$", re.MULTILINE)


def describe_type(hint) -> str:
    """Human words for the values a type hint accepts (``Literal['a', 'b']`` → ``one of a, b``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe_type(a) for a in args)
    if origin in (list, tuple):
        return "a list such as [a, b]"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
    return words.get(hint, getattr(hint, "__name__", str(hint)))


def _options(parser) -> list[str]:
    return [o for action in parser._actions for o in action.option_strings if o.startswith("--")]


def short_parse_error(message: str, parser) -> str:
    """jsonargparse's (often many-line) message as one line: the option, the value, the valid values."""
    if message.startswith("unrecognized arguments:"):
        unknown = [a for a in message.split(":", 1)[1].split() if a.startswith("-")]
        parts = []
        for option in unknown or message.split(":", 1)[1].split()[:1]:
            name = option.split("=", 1)[0]
            close = difflib.get_close_matches(name, _options(parser), n=3)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            parts.append(f"unknown option {name}{hint}")
        return "; ".join(parts) + " (options are never abbreviated)"
    key = _KEY.match(message)
    if key:
        dest = key.group(1)
        action = next((a for a in parser._actions if a.dest == dest), None)
        hint = getattr(action, "_typehint", None)
        got = _GOT.search(message)
        value = f" {got.group(1).strip()!r}" if got else ""
        valid = f"; expected {describe_type(hint)}" if hint is not None else ""
        return f"--{dest}: invalid value{value}{valid}"
    return message.strip().splitlines()[0] if message.strip() else "invalid arguments"


def _config_paths(argv: list[str]) -> list[str]:
    paths = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            paths.append(argv[i + 1])
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
    return paths


def check_config_files(argv: list[str]) -> None:
    """Each ``--config`` file exists and is a YAML mapping; errors name the file and line."""
    for path in _config_paths(argv):
        file = Path(path)
        if not file.is_file():
            what = "is a folder" if file.is_dir() else "does not exist"
            raise ConfigError(f"--config {path} {what}.\n  fix: pass a YAML file (see configs/ for examples)")
        try:
            value = yaml.safe_load(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}).\n  fix: save it as UTF-8") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(
                f"{where}: invalid YAML ({problem}).\n  fix: check the indentation, quotes and brackets on "
                "that line (a value with ':' or '#' needs quotes)"
            ) from None
        if value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"{path}: expected a mapping of options (key: value), got a YAML {type(value).__name__}.\n"
                "  fix: write one 'option: value' per line, nested sections indented"
            )


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable(folder: Path, option: str, value: Path) -> None:
    """``folder`` exists as a writable folder, or can be created (its nearest existing ancestor is one)."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise ConfigError(
            f"{option} {value}: {base} is a file, so the folder cannot be created.\n  fix: choose another {option}"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{option} {value}: no permission to write in {base}.\n"
            f"  fix: choose an {option} you can write to, or fix the folder's permissions"
        )


def check_writable_dir(path: str | Path, option: str = "output_dir") -> None:
    """``path`` is (or can be created as) a folder this process may write into."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{option} {folder} is a file, not a folder.\n  fix: choose another {option}, or move the file away"
        )
    _check_creatable(folder, option, folder)


def check_writable_file(path: str | Path, option: str = "output") -> None:
    """``path`` names a file (not a folder) that this process may create or replace."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(
            f"{option} {file} is a folder; it must name a file.\n  fix: pass a file name, e.g. {file / 'results.json'}"
        )
    if file.exists() and not os.access(file, os.W_OK):
        raise ConfigError(f"{option} {file} exists and is read-only.\n  fix: choose another {option}")
    _check_creatable(file.parent, option, file)


def check_outputs(config) -> None:
    """Check every top-level ``output_dir`` / ``output`` field of a command's config dataclass."""
    if not is_dataclass(config):
        return
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None or not isinstance(value, (str, os.PathLike)):
            continue
        if f.name == "output_dir" or f.name.endswith("_dir") and f.name.startswith("output"):
            check_writable_dir(value, f.name)
        elif f.name == "output" or f.name.startswith("output_"):
            check_writable_file(value, f.name)
