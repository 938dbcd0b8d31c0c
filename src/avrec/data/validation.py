"""Validation of raw tables: every problem is reported with file, line and column.

Checks: required/unknown columns, types, duplicate IDs, unknown references, NaN/inf/out-of-range
numbers, impossible timestamps, NUL bytes, oversized fields, and media paths that are missing or
escape the dataset folder (``..``, absolute paths, symlinks pointing out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.data.dataset import (
    EVENT_KINDS,
    INTERACTION_COLUMNS,
    INTERACTION_REQUIRED,
    ITEM_COLUMNS,
    ITEM_REQUIRED,
    MEDIA_COLUMNS,
)
from avrec.data.readers import RawTable
from avrec.errors import Problem, ValidationError
from avrec.settings import LIMITS

MAX_PROBLEMS = 200
ID_COLUMNS = ("item_id", "user_id")
EARLIEST_TIMESTAMP = 0  # 1970-01-01


@dataclass
class Rules:
    """Bounds a dataset must respect (ratings scale, sizes)."""

    rating_min: float = 0.0
    rating_max: float = 10.0
    max_text_field: int = LIMITS.max_text_field
    max_id_length: int = LIMITS.max_id_length


@dataclass
class Collector:
    """Collects problems, keeping the first MAX_PROBLEMS and the total count."""

    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def add_rows(self, table: RawTable, mask: np.ndarray, column: str | None, message: str) -> None:
        rows = np.flatnonzero(mask)
        self.total += len(rows)
        for r in rows[: max(0, MAX_PROBLEMS - len(self.problems))]:
            self.problems.append(Problem(table.file, int(table.lines[r]), column, message))

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def raise_if_any(self) -> None:
        if self.total:
            raise ValidationError(self.problems, self.total)


def merge_problems(into: Collector, part: Collector) -> None:
    """Add ``part``'s problems (a chunk's, checked with its own collector) to ``into``."""
    for problem in part.problems:
        into.add(problem)
    into.total += part.total - len(part.problems)


def check_columns(
    table: RawTable, required: list[str], allowed: list[str] | None, out: Collector
) -> bool:
    cols = list(table.frame.columns)
    for col in required:
        if col not in cols:
            out.add(Problem(table.file, 1, col, f"missing required column {col!r}"))
    dupes = {c for c in cols if cols.count(c) > 1}
    for col in sorted(dupes):
        out.add(Problem(table.file, 1, col, f"column {col!r} appears more than once"))
    if allowed is not None:
        for col in cols:
            if col not in allowed:
                out.add(
                    Problem(
                        table.file, 1, col, f"unknown column {col!r}; allowed: {', '.join(allowed)}"
                    )
                )
    return not out.total


def _check_text(table: RawTable, rules: Rules, out: Collector) -> None:
    for col in table.frame.columns:
        values = table.frame[col].astype(str)
        lengths = values.str.len().to_numpy()
        limit = rules.max_id_length if col in ID_COLUMNS else rules.max_text_field
        big = lengths > limit // 4  # cheap filter, then the exact UTF-8 size
        if big.any():
            sizes = np.zeros(len(values), dtype=np.int64)
            sizes[big] = [len(v.encode("utf-8")) for v in values[big]]
            out.add_rows(table, sizes > limit, col, f"field is larger than {limit} bytes")
        nul = values.str.contains("\x00", regex=False).to_numpy()
        out.add_rows(table, nul, col, "field contains a NUL byte")


def _check_ids(table: RawTable, col: str, out: Collector) -> None:
    values = table.frame[col].astype(str).str.strip()
    out.add_rows(table, (values == "").to_numpy(), col, f"empty {col}")


def _numbers(table: RawTable, col: str, out: Collector, what: str) -> np.ndarray:
    """Parse a numeric column ('' -> NaN); report non-numbers and NaN/inf written out."""
    raw = table.frame[col].astype(str).str.strip()
    parsed = pd.to_numeric(raw.where(raw != "", None), errors="coerce").to_numpy(dtype=float)
    present = (raw != "").to_numpy()
    not_number = (
        present & np.isnan(parsed) & ~raw.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
    )
    out.add_rows(table, not_number, col, f"{what} is not a number")
    literal_nan = present & raw.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
    out.add_rows(table, literal_nan, col, f"{what} is NaN")
    out.add_rows(table, present & np.isinf(parsed), col, f"{what} is infinite")
    return parsed


def check_media(table: RawTable, root: Path, out: Collector) -> None:
    root = root.resolve()
    for col in MEDIA_COLUMNS:
        if col not in table.frame.columns:
            continue
        for r, value in enumerate(table.frame[col].tolist()):
            if not value:
                continue
            message = media_problem(root, value)
            if message:
                out.add(Problem(table.file, int(table.lines[r]), col, message))


def media_problem(root: Path, value: str) -> str | None:
    """Why a media path is unusable, or None if it names a file inside ``root``."""
    rel = Path(value)
    if rel.is_absolute() or value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        return f"media path {value!r} is absolute; paths must be relative to the dataset folder"
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        return f"media path {value!r} escapes the dataset folder"
    if not target.exists():
        return f"media file {value!r} does not exist"
    if not target.is_file():
        return f"media path {value!r} is not a file"
    return None


def validate_items(table: RawTable, root: Path | None, rules: Rules, out: Collector) -> None:
    if not check_columns(table, ITEM_REQUIRED, ITEM_COLUMNS, out):
        return
    _check_text(table, rules, out)
    _check_ids(table, "item_id", out)
    ids = table.frame["item_id"].astype(str).str.strip()
    dup = ids.duplicated(keep="first").to_numpy() & (ids != "").to_numpy()
    if dup.any():
        first = {v: int(table.lines[i]) for i, v in reversed(list(enumerate(ids)))}
        for r in np.flatnonzero(dup)[:MAX_PROBLEMS]:
            out.add(
                Problem(
                    table.file,
                    int(table.lines[r]),
                    "item_id",
                    f"duplicate item_id {ids.iloc[r]!r} (first on line {first[ids.iloc[r]]})",
                )
            )
    if "year" in table.frame.columns:
        year = _numbers(table, "year", out, "year")
        out.add_rows(table, (year < 1800) | (year > 2200), "year", "year is out of range 1800-2200")
    if root is not None:
        check_media(table, root, out)


def validate_interactions(
    table: RawTable, item_ids: set[str], user_ids: set[str] | None, rules: Rules, out: Collector
) -> dict[str, np.ndarray]:
    """Check an interactions table; returns the numbers parsed on the way (``rating``,
    ``weight``, ``timestamp``: NaN where empty or not a number) for callers that need them."""
    parsed: dict[str, np.ndarray] = {}
    if not check_columns(table, INTERACTION_REQUIRED, INTERACTION_COLUMNS, out):
        return parsed
    _check_text(table, rules, out)
    frame = table.frame
    for col in INTERACTION_REQUIRED:
        _check_ids(table, col, out)
    items = frame["item_id"].astype(str).str.strip()
    unknown = ~items.isin(item_ids).to_numpy() & (items != "").to_numpy()
    out.add_rows(table, unknown, "item_id", "interaction names an item that is not in the catalog")
    if user_ids is not None:
        users = frame["user_id"].astype(str).str.strip()
        unknown = ~users.isin(user_ids).to_numpy() & (users != "").to_numpy()
        out.add_rows(table, unknown, "user_id", "interaction names a user that is not in users")
    if "rating" in frame.columns:
        rating = parsed["rating"] = _numbers(table, "rating", out, "rating")
        bad = (rating < rules.rating_min) | (rating > rules.rating_max)
        out.add_rows(
            table,
            bad,
            "rating",
            f"rating is out of range {rules.rating_min:g}-{rules.rating_max:g}",
        )
    if "weight" in frame.columns:
        weight = parsed["weight"] = _numbers(table, "weight", out, "weight")
        out.add_rows(table, weight < 0, "weight", "weight is negative")
    if "timestamp" in frame.columns:
        parsed["timestamp"] = check_timestamps(table, out)
    if "event" in frame.columns:
        event = frame["event"].astype(str).str.strip()
        bad = (event != "").to_numpy() & ~event.isin(EVENT_KINDS).to_numpy()
        out.add_rows(table, bad, "event", f"unknown event; allowed: {', '.join(EVENT_KINDS)}")
    return parsed


def check_timestamps(table: RawTable, out: Collector) -> np.ndarray:
    ts = _numbers(table, "timestamp", out, "timestamp")
    latest = time.time() + 86_400
    finite = np.isfinite(ts)
    out.add_rows(
        table,
        finite & (ts != np.floor(ts)),
        "timestamp",
        "timestamp must be whole seconds since 1970-01-01 (Unix time)",
    )
    out.add_rows(
        table,
        finite & (ts < EARLIEST_TIMESTAMP),
        "timestamp",
        "impossible timestamp: before 1970-01-01",
    )
    millis = finite & (ts > 1e11)
    out.add_rows(
        table,
        millis,
        "timestamp",
        "impossible timestamp: far in the future (milliseconds instead of seconds?)",
    )
    out.add_rows(
        table, finite & ~millis & (ts > latest), "timestamp", "impossible timestamp: in the future"
    )
    return ts


def validate_users(table: RawTable, rules: Rules, out: Collector) -> None:
    if not check_columns(table, ["user_id"], None, out):
        return
    _check_text(table, rules, out)
    _check_ids(table, "user_id", out)
    ids = table.frame["user_id"].astype(str).str.strip()
    out.add_rows(
        table, ids.duplicated().to_numpy() & (ids != "").to_numpy(), "user_id", "duplicate user_id"
    )
