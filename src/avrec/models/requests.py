"""The JSONL request format of ``avrec recommend`` and its batched execution.

One JSON object per line: ``{"user_id": "..."}`` for a known user, optionally ``"history"``
(list of item IDs; for unknown users, or to override), ``"query"`` (natural-language request),
``"candidates"`` (rank only these), ``"exclude_seen"`` (default true), and re-ranking settings
``"rerank"`` (none, mmr, dpp, calibrated), ``"diversity"`` (0-1) and ``"debias"`` (applied by
``avrec.rerank.requests``, which also checks them). One output object per request, in order:
``{"user_id", "items", "scores", "explanations"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from avrec.errors import Problem
from avrec.errors import ValidationError as InputError
from avrec.models.base import Recommender

MAX_LIST = 100_000
MAX_QUERY = 2_000


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, max_length=256)
    history: list[str] | None = Field(default=None, max_length=MAX_LIST)
    query: str | None = Field(default=None, max_length=MAX_QUERY)
    candidates: list[str] | None = Field(default=None, max_length=MAX_LIST)
    exclude_seen: bool = True
    #: re-ranking settings as given (None: the command's default); one check for them all,
    #: ``avrec.rerank.apply.check_options``, so any JSON value is kept here
    rerank: Any = None
    diversity: Any = None
    debias: Any = None
    #: the input line the request came from (0: not read from a file)
    _line: int = PrivateAttr(0)

    @property
    def line(self) -> int:
        """The input line the request came from (0: not read from a file)."""
        return self._line

    def from_line(self, n: int) -> Request:
        """This request, marked as read from input line ``n``."""
        self._line = n
        return self

    @field_validator("user_id", mode="before")
    @classmethod
    def _id_as_text(cls, value):
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("history", "candidates", mode="before")
    @classmethod
    def _ids_as_text(cls, value):
        if isinstance(value, list):
            return [
                str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            ]
        return value


def read_requests(path: Path) -> list[Request]:
    """Parse and validate every line; all problems are reported together, by line."""
    problems, requests = [], []
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            [Problem(str(path), None, None, f"not valid UTF-8 at byte {exc.start}")]
        ) from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            requests.append(Request.model_validate(json.loads(line)).from_line(n))
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), n, None, f"invalid JSON: {exc.msg}"))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or None
                problems.append(Problem(str(path), n, where, err["msg"]))
    if problems:
        raise InputError(problems[:200], total=len(problems))
    return requests


def unknown_ids(model: Recommender, requests: list[Request], limit: int = 20) -> list[str]:
    """What the requests name that ``model`` does not know, one line each (at most ``limit``,
    then a count): item IDs in a history or candidate list, which are left out, and users
    unknown to the model with neither history nor query (the model answers as for an empty
    history). Nothing here stops a request."""
    user_vocab, item_vocab, _ = model.fitted_parts()
    known = item_vocab.lookup
    users = user_vocab.lookup([r.user_id or "" for r in requests])
    notes = []
    for n, (req, user) in enumerate(zip(requests, users, strict=True), start=1):
        where = f"line {req.line}" if req.line else f"request {n}"
        for field, label in (("history", "history"), ("candidates", "candidate")):
            ids = getattr(req, field) or []
            missing = [i for i, pos in zip(ids, known(ids), strict=True) if pos < 0]
            if missing:
                shown = ", ".join(repr(i) for i in missing[:5]) + (
                    ", ..." if len(missing) > 5 else ""
                )
                notes.append(
                    f"{where}: {len(missing)} of {len(ids)} {label} item(s) unknown to the "
                    f"model, left out: {shown}"
                )
        if user < 0 and req.history is None and not (req.query and req.query.strip()):
            notes.append(
                f"{where}: user {req.user_id!r} is unknown to the model and the request has "
                "no history or query: answered as an empty history"
            )
    if len(notes) > limit:
        notes = [*notes[:limit], f"... and {len(notes) - limit} more"]
    return notes


def run_requests(
    model: Recommender,
    requests: list[Request],
    k: int,
    explain: bool = True,
    via: Any = None,
) -> list[dict]:
    """Answer ``requests`` with ``model``; ``via``: what answers them in its place, with the
    same ``recommend`` signature (a retrieval cascade over ``model``, avrec.index.cascade)."""
    recs = (via if via is not None else model).recommend(
        [r.user_id for r in requests],
        k,
        histories=[r.history for r in requests]
        if any(r.history is not None for r in requests)
        else None,
        candidates=[r.candidates for r in requests]
        if any(r.candidates is not None for r in requests)
        else None,
        queries=[r.query for r in requests] if any(r.query for r in requests) else None,
        exclude_seen=[r.exclude_seen for r in requests],
        explain=explain,
    )
    out = recs.to_records()
    for rec, req in zip(out, requests, strict=True):
        rec["user_id"] = req.user_id
    return out


def write_jsonl(records: Iterable[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
