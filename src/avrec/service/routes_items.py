"""Catalog endpoints: browse, one item with its understanding, similar items, text search,
batch ingest (write key), media files."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select

from avrec.data.dataset import split_multi
from avrec.feedback.profile import attribute_words
from avrec.service.faults import degrade
from avrec.service.media_types import sniff_file
from avrec.service.schemas import ItemBatch
from avrec.service.security import require_scope
from avrec.storage import tables as t

router = APIRouter(prefix="/api", tags=["items"])


def _state(request: Request):
    return request.app.state.avrec


def _item_dict(state, pos: int) -> dict:
    row = state.catalog.iloc[pos]
    out = {"item_id": row["item_id"]}
    for col in ("title", "kind", "language", "year"):
        v = row.get(col)
        out[col] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    out["genres"] = split_multi(row.get("genres"))
    out["tags"] = split_multi(row.get("tags"))[:12]
    out["poster"] = f"/media/{row['item_id']}"
    return out


@router.get("/items")
def list_items(
    request: Request,
    response: Response,
    offset: int = Query(0, ge=0),
    limit: int = Query(24, ge=1, le=200),
    q: str | None = Query(None, max_length=200),
) -> dict:
    state = _state(request)
    cat = state.catalog
    idx: Sequence[int] = range(len(cat))
    if q:
        titles = (
            cat["title"].fillna("").str.lower() if "title" in cat else pd.Series([""] * len(cat))
        )
        idx = list(titles[titles.str.contains(q.lower(), regex=False)].index)
    page = list(idx)[offset : offset + limit]
    items = [_item_dict(state, p) for p in page]
    ids = [i["item_id"] for i in items]
    summaries: dict[str, dict] = degrade(
        response, lambda: understanding_summaries(state.engine, ids), dict
    )
    for item in items:
        item["understanding"] = summaries.get(item["item_id"], {})
    return {"total": len(idx), "items": items}


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


def _position(state, item_id: str) -> int:
    pos = state.vocab.get(item_id)
    if pos is None:
        raise HTTPException(404, f"unknown item {item_id!r}")
    return pos


@router.get("/items/{item_id}")
def get_item(item_id: str, request: Request, response: Response) -> dict:
    state = _state(request)
    out = _item_dict(state, _position(state, item_id))

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
    out["interactions"] = int(state.model.train_matrix[:, _position(state, item_id)].nnz)
    return out


@router.get("/items/{item_id}/similar")
def similar(item_id: str, request: Request, k: int = Query(10, ge=1, le=200)) -> dict:
    state = _state(request)
    pos = _position(state, item_id)
    if state.index is None:
        raise HTTPException(409, "this model has no content vectors")
    vec = state.content_vectors()[pos]
    idx, scores = state.search(vec[None, :], k + 1)
    hits = [(int(i), float(s)) for i, s in zip(idx[0], scores[0], strict=True) if int(i) != pos][:k]
    return {"item_id": item_id, "items": [{**_item_dict(state, i), "score": s} for i, s in hits]}


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
    scores = content.query_vectors @ query
    top = scores.argsort()[::-1][:k]
    return {
        "query": q,
        "items": [{**_item_dict(state, int(i)), "score": float(scores[i])} for i in top],
    }


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
