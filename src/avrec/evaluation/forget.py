"""Removing users from evaluation reports: the per-user tables (``per_user.csv``, any CSV with a
``user_id`` column) lose those users' lines. Aggregates (``results.json``, the HTML page and its
plots) are means over many users and name none, so they stay as they are."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path


def forget_users_in_reports(root: str | Path, user_ids: Iterable[str]) -> int:
    """Drop the lines of ``user_ids`` from every CSV under ``root`` that has a ``user_id``
    column; each file is replaced atomically (new file, then rename). Returns the lines removed."""
    wanted = set(user_ids)
    removed = 0
    for path in sorted(Path(root).rglob("*.csv")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        if not lines:
            continue
        header = next(csv.reader([lines[0]]))
        if "user_id" not in header:
            continue
        col = header.index("user_id")
        kept = [lines[0]]
        for line in lines[1:]:
            fields = next(csv.reader([line]), [])
            if len(fields) > col and fields[col] in wanted:
                continue
            kept.append(line)
        if len(kept) == len(lines):
            continue
        removed += len(lines) - len(kept)
        tmp = path.with_name(f".{path.name}.forget-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return removed
