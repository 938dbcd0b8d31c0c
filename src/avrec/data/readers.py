"""Read one table of a dataset folder (CSV, JSONL or Parquet) into strings, keeping the line
of each record so that validation can name the exact place of a problem."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.errors import Problem, ValidationError

SUFFIXES = (".csv", ".jsonl", ".parquet")
MAX_FILE_BYTES = 4 * 1024**3
csv.field_size_limit(2**31 - 1)


@dataclass
class RawTable:
    """A table as read: every cell a string ('' = missing), and the line of each record."""

    file: str
    frame: pd.DataFrame
    lines: np.ndarray
    line_label: str = "line"


def find_table(root: Path, stem: str) -> Path | None:
    found = [root / f"{stem}{s}" for s in SUFFIXES if (root / f"{stem}{s}").is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ValidationError(
            [Problem(str(root), None, None, f"more than one {stem} table: {names}")]
        )
    return found[0] if found else None


def read_table(path: Path) -> RawTable:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationError([Problem(path.name, None, None, "file is larger than 4 GiB")])
    if path.suffix == ".csv":
        return _read_csv(path)
    if path.suffix == ".jsonl":
        return _read_jsonl(path)
    return _read_parquet(path)


def _decode(path: Path) -> str:
    return decode_utf8(path.name, path.read_bytes(), 1).removeprefix("\ufeff")


def decode_utf8(name: str, data: bytes, first_line: int) -> str:
    """``data`` as text; a byte that is not UTF-8 is reported with its line (``data`` starts on
    line ``first_line`` of the file ``name``)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValidationError(
            [
                Problem(
                    name,
                    line,
                    None,
                    f"not valid UTF-8: byte 0x{data[exc.start]:02x} at character {col}",
                )
            ]
        ) from None


def _read_csv(path: Path) -> RawTable:
    text = _decode(path)
    fast = _read_csv_fast(path, text)
    return fast if fast is not None else _read_csv_exact(path, text)


def strict_csv_frame(text: str, names: list[str] | None = None) -> pd.DataFrame | None:
    """``text`` parsed by pandas' C parser as strings, exactly as written (no NA guessing,
    blank lines kept); None where pandas warns, fails or leaves a field missing (the exact
    reader then finds the problems and their lines). ``names``: the header, when ``text`` has
    none (a chunk of a file)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                header=None if names is not None else "infer",
                names=names,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                engine="c",
                index_col=False,
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError, ValueError):
        return None
    return None if frame.isna().to_numpy().any() else frame


def text_lines(text: str) -> int:
    """Lines in ``text`` (a last line without its newline counts)."""
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _read_csv_fast(path: Path, text: str) -> RawTable | None:
    """pandas' C parser; valid only when every record is one line and well-formed (else None,
    and the exact reader finds the problems and the lines)."""
    frame = strict_csv_frame(text)
    if frame is None or text_lines(text) != len(frame) + 1:
        return None
    if any(str(c).startswith("Unnamed: ") or str(c) != str(c).strip() for c in frame.columns):
        return None
    if len(set(frame.columns)) != len(frame.columns) or any("." in str(c) for c in frame.columns):
        return None  # pandas renames duplicate headers ("a.1"): let the exact reader report them
    frame = frame.astype(object)
    return RawTable(path.name, frame, np.arange(2, len(frame) + 2, dtype=np.int64))


def _read_csv_exact(path: Path, text: str) -> RawTable:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError([Problem(path.name, 1, None, "empty file (no header row)")]) from None
    except csv.Error as exc:
        raise ValidationError([Problem(path.name, 1, None, f"malformed CSV: {exc}")]) from None
    return csv_records(path.name, reader, [h.strip() for h in header], 0)


def csv_records(name: str, reader, header: list[str], offset: int) -> RawTable:
    """The records left in ``reader`` (a strict ``csv.reader``) as a table of ``header``'s
    columns; ``offset`` is added to the reader's line numbers (the lines before its text)."""
    problems: list[Problem] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    width = len(header)
    prev = reader.line_num
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if not row:
                continue
            if len(row) != width:
                if len(problems) < 100:
                    problems.append(
                        Problem(
                            name, offset + start, None, f"expected {width} fields, found {len(row)}"
                        )
                    )
                continue
            rows.append(row)
            lines.append(offset + start)
    except csv.Error as exc:
        problems.append(Problem(name, offset + reader.line_num, None, f"malformed CSV: {exc}"))
    if problems:
        raise ValidationError(problems)
    frame = (
        pd.DataFrame(rows, columns=header, dtype=object)
        if rows
        else pd.DataFrame({h: pd.Series(dtype=object) for h in header})
    )
    return RawTable(name, frame, np.asarray(lines, dtype=np.int64))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, (list, tuple)):
        return "|".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _read_jsonl(path: Path) -> RawTable:
    text = _decode(path)
    records, lines, problems = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(path.name, n, None, f"invalid JSON: {exc.msg} at character {exc.colno}")
            )
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(path.name, n, None, "each line must be a JSON object"))
            continue
        records.append({k: _cell(v) for k, v in obj.items()})
        lines.append(n)
    if problems:
        raise ValidationError(problems[:100], total=len(problems))
    frame = (
        pd.DataFrame.from_records(records).astype(object).fillna("") if records else pd.DataFrame()
    )
    return RawTable(path.name, frame, np.asarray(lines, dtype=np.int64))


def _read_parquet(path: Path) -> RawTable:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as exc:
        raise ValidationError(
            [Problem(path.name, None, None, f"unreadable Parquet file: {exc}")]
        ) from None
    out = pd.DataFrame(
        {name: [_cell(v) for v in table.column(name).to_pylist()] for name in table.column_names},
        dtype=object,
    )
    return RawTable(path.name, out, np.arange(1, len(out) + 1, dtype=np.int64), line_label="row")
