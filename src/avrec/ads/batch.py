"""Ads for a file of requests (``avrec ads select``): one JSON object per line,

    {"user_id": "196", "context_item_id": "242", "time": "2026-12-07T20:15:00",
     "history": ["1", "50"], "slots": 2, "age": 31, "locale": "us"}

``user_id`` and ``context_item_id`` are required; ``history`` (oldest first) replaces the
person's training history in the model, ``time`` (ISO, UTC) defaults to the batch's start,
``slots`` to the command's. Requests are served in file order against one in-memory ledger:
each ad chosen counts as an impression, so frequency caps hold across the batch (nothing is
clicked, so budgets and pacing see no spend).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from avrec.ads.eligibility import Context, MemoryLedger, Person
from avrec.ads.select import AdRequest, AdSelector
from avrec.errors import AvrecError

FIELDS = {"user_id", "context_item_id", "time", "history", "slots", "age", "locale"}


class AdRequestError(AvrecError):
    """A request line that cannot be served (the message names the file and line)."""


def _request(doc: object, catalog: Mapping[str, dict], training, now: dt.datetime, slots: int):
    if not isinstance(doc, dict):
        raise ValueError("a request is a JSON object")
    unknown = sorted(set(doc) - FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} (known: {sorted(FIELDS)})")
    user, context = doc.get("user_id"), doc.get("context_item_id")
    if not isinstance(user, str) or not user:
        raise ValueError("user_id must be a non-empty string")
    if not isinstance(context, str) or context not in catalog:
        raise ValueError(f"context_item_id {context!r} is not in the model's catalog")
    history = doc.get("history")
    if history is None:
        history = training(user)
    elif not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise ValueError("history must be a list of item ids")
    if context not in history:
        history = [*history, context]
    when = now
    if doc.get("time") is not None:
        try:
            when = dt.datetime.fromisoformat(str(doc["time"]))
        except ValueError:
            raise ValueError(f"time must be an ISO date and time, not {doc['time']!r}") from None
    n = doc.get("slots", slots)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 20:
        raise ValueError("slots must be a whole number 1-20")
    attrs = {k: doc[k] for k in ("age", "locale") if doc.get(k) is not None}
    person = Person.from_attributes(user, attrs, history)
    return AdRequest(person, tuple(history), Context.from_row(catalog[context]), when), n


def read_requests(
    path: str | Path, catalog: pd.DataFrame, training, slots: int = 1, now=None
) -> list[tuple[AdRequest, int]]:
    """Each line's request and slots; ``training(user_id)`` is a person's training history
    (oldest first). An :class:`AdRequestError` names the first bad line."""
    rows = {str(r["item_id"]): r for r in catalog.to_dict("records")}
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    out = []
    with Path(path).open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                out.append(_request(json.loads(line), rows, training, now, slots))
            except (ValueError, UnicodeDecodeError) as exc:
                raise AdRequestError(f"{path}:{line_no}: {exc}") from None
    if not out:
        raise AdRequestError(f"{path}: no requests")
    return out


def serve_batch(selector: AdSelector, requests: list[tuple[AdRequest, int]]) -> list[dict]:
    """Each request's chosen ads, in order; every chosen ad recorded as an impression."""
    ledger = MemoryLedger()
    x = selector.features([r for r, _ in requests])
    by_id = {ad.ad_id: ad for ad in selector.ads}
    out = []
    for n, (req, slots) in enumerate(requests):
        chosen = selector.choose(req, x[n], ledger, slots)
        for shown in chosen.ads:
            ledger.record("impression", req.person.user_id, by_id[shown["ad_id"]], req.now.date())
        out.append(
            {
                "user_id": req.person.user_id,
                "context_item_id": req.context.item_id,
                "time": req.now.isoformat(),
                "ads": chosen.ads,
                "eligible": chosen.eligible,
                "excluded": chosen.excluded,
            }
        )
    return out
