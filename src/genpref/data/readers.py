"""Reading raw records from files, ``datasets`` objects, lists and hub names (no validation).

Each record comes with its source name and 1-based line (JSONL/CSV) or row number, so that
``genpref.data.load`` can name it in errors. A line that is not valid JSON becomes a ``_BadRecord``,
which the loader skips or raises like any other bad row.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genpref.errors import DataError

_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FILE_TYPES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".csv")


@dataclass
class _BadRecord:
    """A line that could not be parsed into a JSON object (skippable like any bad row)."""

    error: DataError
    raw: str


# ---------------------------------------------------------------- reading raw records


def _decode(data: bytes, name: str, first_line: int = 1) -> str:
    """UTF-8 text of ``data`` (a leading byte-order mark dropped); a DataError names the bad line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:2] == b"\x1f\x8b":
            fix = "decompress it (`gunzip`), or for JSON Lines name it .jsonl.gz (read compressed)"
            raise DataError("is gzip-compressed, not text", source=name, fix=fix) from None
        line = first_line + data[: exc.start].count(b"\n")
        raise DataError(
            f"not valid UTF-8 ({exc.reason})",
            source=name,
            line=line,
            fix="re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`)",
        ) from None


def _trailing_comma(exc: json.JSONDecodeError) -> bool:
    """Whether a JSON error is a comma right before a closing bracket or brace (not allowed in JSON)."""
    before, after = exc.doc[: exc.pos].rstrip(), exc.doc[exc.pos :].lstrip()
    return before.endswith(",") and after[:1] in ("]", "}")


_TRAILING_COMMA_FIX = "JSON allows no comma before a closing ']' or '}'; remove the trailing comma"


def _parse_object(text: str, name: str, line: int) -> dict | _BadRecord:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fix = "each line must be one complete JSON object; check quotes, commas and escapes"
        if _trailing_comma(exc):
            fix = _TRAILING_COMMA_FIX
        err = DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", source=name, line=line, fix=fix)
        return _BadRecord(err, text)
    if not isinstance(value, dict):
        err = DataError(f"expected a JSON object, got {type(value).__name__}", source=name, line=line)
        return _BadRecord(err, text)
    return value


def _is_gzip(path: Path) -> bool:
    """Gzip by content (its two magic bytes), whatever the file is called (``.JSONL.GZ``, ``.jsonl``)."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _iter_jsonl(path: Path, name: str) -> Iterator[tuple[int, dict | _BadRecord]]:
    compressed = _is_gzip(path)
    if path.name.lower().endswith(".gz") and not compressed:
        fix = "decompress it properly, or rename it without .gz if it is plain text"
        raise DataError("named .gz but not gzip-compressed", source=name, fix=fix)
    opener = gzip.open if compressed else open
    line = 0
    try:
        with opener(path, "rb") as fh:
            for line, raw in enumerate(fh, 1):
                text = _decode(raw, name, line)
                if text.strip():
                    yield line, _parse_object(text, name, line)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        raise DataError(
            f"corrupt gzip data after line {line} ({type(exc).__name__}: {exc})",
            source=name,
            line=line + 1,
            fix="the download or copy is truncated or damaged: fetch the file again (`gzip -t FILE` checks it)",
        ) from None


def _iter_json(path: Path, name: str) -> Iterator[tuple[int, dict | _BadRecord]]:
    try:
        value = json.loads(_decode(path.read_bytes(), name))
    except json.JSONDecodeError as exc:
        fix = "a .json file holds one JSON list of objects; name a file with one object per line .jsonl"
        if _trailing_comma(exc):
            fix = _TRAILING_COMMA_FIX
        elif exc.msg == "Extra data" and exc.doc.lstrip().startswith("{"):
            fix = "this looks like one JSON object per line: rename the file to .jsonl"
        raise DataError(f"invalid JSON: {exc.msg}", source=name, line=exc.lineno, fix=fix) from None
    if not isinstance(value, list):
        fix = "a .json file must hold a list of objects; use .jsonl for one object per line"
        raise DataError(f"expected a list of objects, got {type(value).__name__}", source=name, fix=fix)
    return _iter_objects(value, name)


def _iter_csv(path: Path, name: str) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(_decode(path.read_bytes(), name), newline=""))
    start = 2  # line 1 is the header
    for row in reader:
        row.pop(None, None)  # cells beyond the header
        for key in ("prob", "margin"):  # CSV cells are text: read numbers as numbers
            if row.get(key) in ("", None):
                row.pop(key, None)
                continue
            with contextlib.suppress(ValueError):  # else left as text; validation reports it
                row[key] = float(row[key])
        yield start, row
        start = reader.line_num + 1


def _iter_parquet(path: Path, name: str) -> Iterator[tuple[int, dict | _BadRecord]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise DataError(f"not a readable parquet file: {exc}", source=name) from None
    return _iter_objects((row for batch in parquet.iter_batches() for row in batch.to_pylist()), name)


def _iter_objects(rows: Iterable[Any], name: str) -> Iterator[tuple[int, dict | _BadRecord]]:
    for index, row in enumerate(rows, 1):
        if isinstance(row, dict):
            yield index, row
        else:
            err = DataError(f"expected a dict, got {type(row).__name__}", source=name, line=index)
            yield index, _BadRecord(err, repr(row))


def _load_hub(name: str, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(name, split=split)
    except Exception as exc:  # network, auth, unknown dataset or split: all reported alike
        raise DataError(
            f"'{name}' does not exist locally and could not be loaded from the Hugging Face hub "
            f"({type(exc).__name__}: {exc})",
            source=name,
            fix="check the file path; for a hub dataset check its name, the split and your network "
            "(HF_HUB_OFFLINE=1 forbids downloads)",
        ) from None


def _open(source: Any, split: str) -> tuple[str, Iterator[tuple[int, dict | _BadRecord]]]:
    """The display name of ``source`` and an iterator of ``(line, row)``."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        lower = path.name.lower()
        if path.is_file():
            if lower.endswith((".jsonl", ".jsonl.gz")):
                return path.name, _iter_jsonl(path, path.name)
            if lower.endswith(".json"):
                return path.name, _iter_json(path, path.name)
            if lower.endswith(".csv"):
                return path.name, _iter_csv(path, path.name)
            if lower.endswith(".parquet"):
                return path.name, _iter_parquet(path, path.name)
            fix = f"use one of {', '.join(_FILE_TYPES)}"
            raise DataError(f"unsupported file type: {path}", source=str(path), fix=fix)
        if path.exists():
            raise DataError(f"{path} is a folder, not a data file", source=str(path), fix="pass one file")
        if isinstance(source, str) and _HUB_NAME.match(source) and not lower.endswith(_FILE_TYPES):
            dataset = _load_hub(source, split)
            return source, _iter_objects(dataset, source)
        fix = f"check the path (relative paths start at {Path.cwd()})"
        raise DataError(f"file not found: {path}", source=str(path), fix=fix)
    if isinstance(source, (list, tuple)):
        return "<list>", _iter_objects(source, "<list>")
    import datasets

    if isinstance(source, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in source:
            raise DataError(f"no split '{split}' (has {sorted(source)})", source="<DatasetDict>")
        source = source[split]
    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        name = getattr(source.info, "dataset_name", None) or "<Dataset>"
        return name, _iter_objects(source, name)
    raise TypeError(f"cannot load preference data from a {type(source).__name__}")


def read_records(source: Any, *, split: str = "train") -> Iterator[tuple[str, int, dict]]:
    """Yield ``(source name, 1-based line or row number, raw dict)`` for every row; bad JSON raises."""
    name, rows = _open(source, split)
    for line, row in rows:
        if isinstance(row, _BadRecord):
            raise row.error
        yield name, line, row
