"""Catalog endpoints: browse, one item with its understanding, similar items, text search,
batch ingest (write key), media files."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select

from avrec.feedback.profile import attribute_words
from avrec.service.faults import degrade
from avrec.service.media_types import sniff_file
from avrec.service.schemas import ItemBatch
from avrec.service.security import require_scope
from avrec.storage import tables as t

router = APIRouter(prefix="/api", tags=["items"])


def _state(request: Request):
    return request.app.state.avrec


@router.get("/items")
def list_items(
    request: Request,
    response: Response,
    offset: int = Query(0, ge=0),
    limit: int = Query(24, ge=1, le=200),
    q: str | None = Query(None, max_length=200),
) -> dict:
    catalog = _state(request).items
    matches: Sequence[str] = catalog.title_matches(q) if q else catalog.ids
    ids = [str(i) for i in matches[offset : offset + limit]]
    items = [catalog.card(i) for i in ids]
    summaries: dict[str, dict] = degrade(
        response, lambda: understanding_summaries(_state(request).engine, ids), dict
    )
    for item in items:
        item["understanding"] = summaries.get(item["item_id"], {})
    return {"total": len(matches), "items": items}


#: readable words per modality for a catalog card: (attribute key, label shown)
SUMMARY_KEYS = (
    ("visual_labels", "visual"),
    ("sound_labels", "sound"),
    ("moods", "moods"),
    ("language", "language"),
)


def understanding_summaries(engine, item_ids: list[str]) -> dict[str, dict]:
    """``{item_id: {"visual": [...], "sound": [...], "moods": [...], "language": [...],
    "failed": [modality, ...]}}`` from the stored understanding (what the encoders saw)."""
    if not item_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.item_understanding.c.item_id,
                t.item_understanding.c.modality,
                t.item_understanding.c.status,
                t.item_understanding.c.attributes,
            ).where(t.item_understanding.c.item_id.in_(item_ids))
        ).all()
    out: dict[str, dict] = {}
    for item, modality, status, attrs in rows:
        summary = out.setdefault(item, {})
        if status != "ok":
            summary.setdefault("not_understood", []).append(f"{modality} ({status})")
            continue
        for key, label in SUMMARY_KEYS:
            for w in attribute_words((attrs or {}).get(key)):
                if w not in summary.setdefault(label, []):
                    summary[label].append(w)
    return out


def _known(state, item_id: str) -> str:
    if item_id not in state.items:
        raise HTTPException(404, f"unknown item {item_id!r}")
    return item_id


@router.get("/items/{item_id}")
def get_item(item_id: str, request: Request, response: Response) -> dict:
    state = _state(request)
    out = state.items.card(_known(state, item_id))

    def stored():
        with state.engine.connect() as conn:
            row = conn.execute(
                select(t.items.c.description).where(t.items.c.item_id == item_id)
            ).first()
            und = conn.execute(
                select(t.item_understanding).where(t.item_understanding.c.item_id == item_id)
            ).all()
        return row, und

    row, und = degrade(response, stored, lambda: (None, []))  # the catalog row is in memory
    out["description"] = row[0] if row else None
    out["understanding"] = {
        u.modality: {
            "status": u.status,
            "reason": u.reason,
            "encoder": u.encoder,
            "attributes": u.attributes,
        }
        for u in und
    }
    out["interactions"] = state.items.popularity(item_id)
    return out


@router.get("/items/{item_id}/similar")
def similar(item_id: str, request: Request, k: int = Query(10, ge=1, le=200)) -> dict:
    state = _state(request)
    catalog = state.items
    if catalog.index is None:
        _known(state, item_id)
        raise HTTPException(409, "this model has no content vectors")
    hits = catalog.similar(_known(state, item_id), k)
    return {"item_id": item_id, "items": [{**catalog.card(i), "score": s} for i, s in hits]}


@router.get("/search")
def search(
    request: Request,
    q: str = Query(..., min_length=1, max_length=500),
    k: int = Query(10, ge=1, le=200),
) -> dict:
    state = _state(request)
    content = state.query_model()
    if content is None:
        raise HTTPException(409, "this model has no request encoder")
    query = content.encode_queries([q])[0]
    hits = state.items.top(content.query_vectors @ query, k)
    return {"query": q, "items": [{**state.items.card(i), "score": s} for i, s in hits]}


@router.post("/items", dependencies=[Depends(require_scope("write"))])
def ingest_items(batch: ItemBatch, request: Request) -> dict:
    """Idempotent batch ingest: stored in the database, encoded and recommendable at once."""
    from avrec.data.dataset import Dataset
    from avrec.storage.ingest import ingest

    state = _state(request)
    frame = pd.DataFrame(
        [
            {
                **i.model_dump(),
                "genres": "|".join(i.genres) or None,
                "tags": "|".join(i.tags) or None,
            }
            for i in batch.items
        ]
    )
    ingest(Dataset(frame, pd.DataFrame({"user_id": [], "item_id": []}), name="api"), state.engine)
    with state.lock:
        try:
            added = state.model.add_items(frame)
        except NotImplementedError as exc:
            raise HTTPException(409, str(exc)) from None
        state.refresh_catalog()
    return {"stored": len(frame), "added_to_model": added}


media_router = APIRouter(tags=["media"])


@media_router.get("/media/{item_id}")
def media(item_id: str, request: Request) -> FileResponse:
    from avrec.data.validation import media_problem

    state = _state(request)
    root = state.media_root_for()
    with state.engine.connect() as conn:
        rel = conn.execute(select(t.items.c.image).where(t.items.c.item_id == item_id)).scalar()
    if not rel or root is None or media_problem(root.resolve(), rel):
        raise HTTPException(404, f"no image for item {item_id!r}")
    path = (root / rel).resolve()
    kind = sniff_file(path)
    if kind is None:  # not a recognised image/audio/video: a download, never rendered (HTML, SVG)
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=path.name,
            content_disposition_type="attachment",
        )
    return FileResponse(path, media_type=kind)
