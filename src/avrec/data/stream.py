"""Interactions in bounded memory: a table read in chunks (CSV, JSONL or Parquet), each chunk
validated as the whole-file reader would (problems name the file's line, or the Parquet row),
and the users x items training matrices built from the chunks' integer codes.

No chunk's strings outlive it: what is kept per interaction is a user code, an item code, the
weight, rating (float32) and timestamp (float64), 24 bytes. The result equals the in-memory
path's (``TrainData.from_dataset`` over :func:`avrec.data.loaders.load_dataset`): the same
vocabularies and, through :func:`avrec.data.matrix.interaction_matrices`, the same matrices.

CSV chunks are cut at line ends; a quoted field may span lines (the chunk is extended until
its quotes are closed). Chunks without quotes or blank lines go through pandas' C parser, the
others through the exact ``csv`` reader, as in :mod:`avrec.data.readers`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.data.dataset import Dataset
from avrec.data.matrix import InteractionMatrices, interaction_matrices
from avrec.data.readers import (
    RawTable,
    _cell,
    csv_records,
    decode_utf8,
    find_table,
    strict_csv_frame,
    text_lines,
)
from avrec.data.validation import Collector, Rules, merge_problems, validate_interactions
from avrec.data.vocab import Vocabulary
from avrec.errors import AvrecError, Problem, ValidationError
from avrec.settings import chunk_rows as default_chunk_rows


def iter_table(path: Path, chunk_rows: int | None = None) -> Iterator[RawTable]:
    """``path``'s records, ``chunk_rows`` at a time (the last chunk shorter). At least one
    chunk is yielded, empty for a table without records, so its columns can be checked."""
    try:
        n = chunk_rows or default_chunk_rows()
    except ValueError as exc:  # a bad $AVREC_CHUNK_ROWS: the user's to fix
        raise AvrecError(str(exc)) from None
    path = Path(path)
    if path.suffix == ".csv":
        return _csv_chunks(path, n)
    if path.suffix == ".jsonl":
        return _jsonl_chunks(path, n)
    if path.suffix == ".parquet":
        return _parquet_chunks(path, n)
    raise ValidationError([Problem(path.name, None, None, "expected .csv, .jsonl or .parquet")])


def _csv_chunks(path: Path, n: int) -> Iterator[RawTable]:
    with open(path, "rb") as f:
        head = _closed(f, f.readline())
        text = decode_utf8(path.name, head, 1).removeprefix("\ufeff")
        if not text.strip():
            raise ValidationError([Problem(path.name, 1, None, "empty file (no header row)")])
        try:
            header = [h.strip() for h in next(csv.reader(io.StringIO(text, newline="")))]
        except csv.Error as exc:
            raise ValidationError([Problem(path.name, 1, None, f"malformed CSV: {exc}")]) from None
        line = 1 + head.count(b"\n")  # the line the next block starts on
        yielded = False
        while block := b"".join(islice(f, n)):
            block = _closed(f, block)
            yield _csv_block(path.name, decode_utf8(path.name, block, line), header, line)
            yielded = True
            line += block.count(b"\n")
        if not yielded:
            yield csv_records(path.name, csv.reader([]), header, 0)


def _closed(f, block: bytes) -> bytes:
    """``block`` extended by whole lines until its quotes pair up (a quoted field may hold
    line breaks; an escaped quote is two quotes, so an odd count means one is still open)."""
    while block.count(b'"') % 2 and (more := f.readline()):
        block += more
    return block


def _csv_block(name: str, text: str, header: list[str], first_line: int) -> RawTable:
    fast = _csv_block_fast(name, text, header, first_line)
    if fast is not None:
        return fast
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    return csv_records(name, reader, header, first_line - 1)


def _csv_block_fast(name: str, text: str, header: list[str], first_line: int) -> RawTable | None:
    """pandas' C parser where every line is one well-formed record (else None)."""
    if '"' in text or "\n\n" in text or "\n\r\n" in text or text.startswith(("\n", "\r")):
        return None
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None  # a line ending other than \n or \r\n: the csv reader counts those lines
    if len(set(header)) != len(header):
        return None
    frame = strict_csv_frame(text, list(header))
    if frame is None or text_lines(text) != len(frame):
        return None
    lines = np.arange(first_line, first_line + len(frame), dtype=np.int64)
    return RawTable(name, frame, lines)


def _jsonl_chunks(path: Path, n: int) -> Iterator[RawTable]:
    with open(path, "rb") as f:
        line, yielded = 1, False
        while raw := list(islice(f, n)):
            text = decode_utf8(path.name, b"".join(raw), line)
            if line == 1:
                text = text.removeprefix("\ufeff")
            records, lines, problems = [], [], []
            for k, row in enumerate(text.split("\n")[: len(raw)]):
                if not row.strip():
                    continue
                try:
                    obj = json.loads(row)
                except json.JSONDecodeError as exc:
                    message = f"invalid JSON: {exc.msg} at character {exc.colno}"
                    problems.append(Problem(path.name, line + k, None, message))
                    continue
                if not isinstance(obj, dict):
                    message = "each line must be a JSON object"
                    problems.append(Problem(path.name, line + k, None, message))
                    continue
                records.append({key: _cell(v) for key, v in obj.items()})
                lines.append(line + k)
            if problems:
                raise ValidationError(problems[:100], total=len(problems))
            frame = pd.DataFrame.from_records(records).astype(object).fillna("")
            yield RawTable(path.name, frame, np.asarray(lines, dtype=np.int64))
            yielded = True
            line += len(raw)
        if not yielded:
            yield RawTable(path.name, pd.DataFrame(), np.zeros(0, np.int64))


def _parquet_chunks(path: Path, n: int) -> Iterator[RawTable]:
    try:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
    except Exception as exc:
        raise ValidationError(
            [Problem(path.name, None, None, f"unreadable Parquet file: {exc}")]
        ) from None
    row = 1
    yielded = False
    for batch in parquet.iter_batches(batch_size=n):
        columns = {name: _strings(batch.column(k)) for k, name in enumerate(names)}
        frame = pd.DataFrame(columns, dtype=object)
        lines = np.arange(row, row + len(frame), dtype=np.int64)
        yield RawTable(path.name, frame, lines, line_label="row")
        yielded = True
        row += len(frame)
    if not yielded:
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in names})
        yield RawTable(path.name, frame, np.zeros(0, np.int64), line_label="row")


def _strings(column) -> list[str]:
    """A Parquet column as the whole-file reader's strings (:func:`readers._cell`), with the
    common types converted by arrow instead of value by value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.fill_null("").to_pylist()
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return pc.cast(column, pa.string()).fill_null("").to_pylist()
    if pa.types.is_floating(kind):
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        x = column.to_numpy(zero_copy_only=False).astype(np.float64)
        whole = ~nulls & np.isfinite(x) & (np.abs(x) < 2.0**53)
        whole[whole] = np.floor(x[whole]) == x[whole]
        out = np.full(len(x), "", dtype=object)
        out[whole] = x[whole].astype(np.int64).astype(str).tolist()
        other = ~whole & ~nulls
        out[other] = [_cell(float(v)) for v in x[other]]
        return out.tolist()
    return [_cell(v) for v in column.to_pylist()]


@dataclass
class StreamedInteractions:
    """The training matrices of a streamed interactions table, and its vocabularies."""

    user_vocab: Vocabulary
    item_vocab: Vocabulary
    matrices: InteractionMatrices
    #: interactions read (rows of the table), and how many had a timestamp
    n_interactions: int
    n_timed: int


class _Codes:
    """Per-chunk integer codes, concatenated at the end: users numbered in order of first
    appearance (renumbered in sorted order by :meth:`user_vocab`), items by the catalog."""

    def __init__(self, item_ids: Sequence[str]):
        self.items = pd.Index(list(item_ids))
        self.users: dict[str, int] = {}
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("u", "i", "w", "r", "t")}

    def add(self, frame: pd.DataFrame, parsed: dict[str, np.ndarray]) -> None:
        """Code one chunk; ``parsed``: its numeric columns as validation parsed them."""
        users = frame["user_id"].astype(str).str.strip()
        codes, uniques = pd.factorize(users)
        get = self.users.setdefault
        known = np.fromiter((get(u, len(self.users)) for u in uniques), np.int32, len(uniques))
        items = self.items.get_indexer(frame["item_id"].astype(str).str.strip())
        if (items < 0).any():
            bad = frame["item_id"].iloc[int(np.argmax(items < 0))]
            raise ValueError(f"interaction names item {bad!r} that is not in the catalog")
        self.parts["u"].append(known[codes])
        self.parts["i"].append(items.astype(np.int32))
        self.parts["w"].append(_number(frame, "weight", parsed).astype(np.float32))
        self.parts["r"].append(_number(frame, "rating", parsed).astype(np.float32))
        self.parts["t"].append(_number(frame, "timestamp", parsed))

    def take(self, key: str) -> np.ndarray:
        parts = self.parts[key]
        empty = np.zeros(0, np.int32 if key in ("u", "i") else np.float64)
        out = np.concatenate(parts) if parts else empty
        parts.clear()  # each chunk's array is released as soon as it is copied
        return out

    def user_vocab(self, extra: Sequence[str] | None) -> tuple[Vocabulary, np.ndarray]:
        """Users sorted by id, then ``extra`` users without interactions (the in-memory
        path's order); and each first-appearance code's place in it."""
        seen = np.asarray(list(self.users), dtype=object)
        order = np.argsort(seen, kind="stable")
        place = np.empty(len(seen), np.int32)
        place[order] = np.arange(len(seen), dtype=np.int32)
        ids = seen[order].tolist()
        if extra is not None:
            ids += [u for u in extra if u not in self.users]
        return Vocabulary(ids), place


def _number(frame: pd.DataFrame, column: str, parsed: dict[str, np.ndarray]) -> np.ndarray:
    if column in parsed:
        return parsed[column]
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    raw = frame[column].astype(str).str.strip()
    return pd.to_numeric(raw.where(raw != "", None), errors="coerce").to_numpy(dtype=float)


def stream_interactions(
    path: Path,
    item_ids: Sequence[str],
    user_ids: Sequence[str] | None = None,
    *,
    chunk_rows: int | None = None,
    rules: Rules | None = None,
    validate: bool = True,
) -> StreamedInteractions:
    """The training matrices of the interactions table at ``path`` over the catalog
    ``item_ids`` (and the ``users`` table's ids, when there is one), read ``chunk_rows`` at a
    time. Every problem of every chunk is collected (as the whole-file validation does) and
    raised as one :class:`ValidationError` after the last chunk."""
    rules = rules or Rules()
    out = Collector()
    codes = _Codes(item_ids)
    known_items = set(codes.items)
    known_users = set(user_ids) if user_ids is not None else None
    n_rows = 0
    for table in iter_table(path, chunk_rows):
        n_rows += len(table.frame)
        parsed: dict[str, np.ndarray] = {}
        if validate:  # a chunk's own collector: column checks stop at problems collected
            found = Collector()
            parsed = validate_interactions(table, known_items, known_users, rules, found)
            merge_problems(out, found)
        if not out.total and len(table.frame):
            codes.add(table.frame, parsed)
    out.raise_if_any()
    user_vocab, place = codes.user_vocab(user_ids)
    rows = place[codes.take("u")]
    times = codes.take("t")
    n_timed = int(np.isfinite(times).sum())
    shape = (len(user_vocab), len(codes.items))
    matrices = interaction_matrices(
        rows, codes.take("i"), codes.take("w"), codes.take("r"), times, shape
    )
    return StreamedInteractions(user_vocab, Vocabulary(codes.items), matrices, n_rows, n_timed)


def stream_folder(
    path: Path, *, chunk_rows: int | None = None, rules: Rules | None = None
) -> tuple[Dataset, StreamedInteractions]:
    """A dataset folder's catalog and users (read whole, validated) and its interactions'
    training matrices (streamed): the dataset returned holds no interactions."""
    from avrec.data.loaders.folder import load_folder

    catalog = load_folder(path, rules=rules, interactions=False)
    found = find_table(Path(path).resolve(), "interactions")
    if found is None:
        raise AvrecError(f"{path}: no interactions.csv, interactions.jsonl or interactions.parquet")
    users = catalog.users["user_id"].tolist() if catalog.users is not None else None
    streamed = stream_interactions(
        found, catalog.items["item_id"].tolist(), users, chunk_rows=chunk_rows, rules=rules
    )
    return catalog, streamed
