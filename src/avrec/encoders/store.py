"""Persisting understanding: per modality one vector artifact (``.npz`` with ``item_ids`` and
``vectors`` under ``$AVREC_HOME/artifacts/embeddings``, recorded in ``artifacts``), and per item
and modality a row in ``item_understanding`` (status ok|failed|missing, reason, readable
attributes, content hash, artifact). Interaction comments get their sentiment stored in
``interactions.sentiment``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, delete, insert, select, update

from avrec.encoders.understand import ModalityResult
from avrec.settings import avrec_home
from avrec.storage import tables as t

CHUNK = 500


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """An ``.npz`` as ``np.savez`` writes it, but with fixed entry times, so the same arrays
    give the same bytes (``np.savez`` stamps each entry with the current time)."""
    import zipfile

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(array), allow_pickle=False)
    os.replace(tmp, path)


def save_understanding(
    engine: Engine, item_ids: list[str], results: dict[str, ModalityResult]
) -> dict:
    """Write vectors and understanding rows; returns ``{modality: {ok, failed, missing}}``."""
    summary = {}
    folder = avrec_home() / "artifacts" / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    for modality, res in results.items():
        ok = [n for n, s in enumerate(res.status) if s == "ok"]
        ids = [item_ids[n] for n in ok]
        digest = hashlib.sha256(
            "\n".join(f"{item_ids[n]}:{res.keys[n]}" for n in ok).encode()
        ).hexdigest()
        version = f"{res.version[:40]}-{digest[:16]}"
        path = folder / f"{modality}-{res.encoder}-{digest[:16]}.npz"
        if not path.exists():
            _write_npz(path, item_ids=np.asarray(ids, dtype=str), vectors=res.vectors[ok])
        with engine.begin() as conn:
            art = conn.execute(
                select(t.artifacts.c.id).where(
                    t.artifacts.c.kind == "embedding",
                    t.artifacts.c.name == modality,
                    t.artifacts.c.version == version,
                )
            ).scalar()
            if art is None:
                art = conn.execute(
                    insert(t.artifacts)
                    .values(
                        kind="embedding",
                        name=modality,
                        version=version,
                        path=str(path),
                        content_hash=digest,
                        meta={
                            "encoder": res.encoder,
                            "encoder_version": res.version,
                            "items": len(ok),
                            "dim": int(res.vectors.shape[1]),
                        },
                    )
                    .returning(t.artifacts.c.id)
                ).scalar_one()
            for start in range(0, len(item_ids), CHUNK):
                conn.execute(
                    delete(t.item_understanding).where(
                        t.item_understanding.c.modality == modality,
                        t.item_understanding.c.item_id.in_(item_ids[start : start + CHUNK]),
                    )
                )
            rows = [
                {
                    "item_id": item_ids[n],
                    "modality": modality,
                    "encoder": res.encoder,
                    "version": res.version,
                    "status": res.status[n],
                    "reason": res.reasons[n],
                    "attributes": res.attributes[n],
                    "content_hash": res.keys[n],
                    "artifact_id": art if res.status[n] == "ok" else None,
                }
                for n in range(len(item_ids))
            ]
            if rows:
                conn.execute(insert(t.item_understanding), rows)
        summary[modality] = res.summary()
    return summary


def load_vectors(
    engine: Engine, modality: str, item_ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors aligned with ``item_ids``, presence mask) from the stored artifacts."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.item_understanding.c.item_id, t.artifacts.c.path)
            .join(t.artifacts, t.artifacts.c.id == t.item_understanding.c.artifact_id)
            .where(
                t.item_understanding.c.modality == modality, t.item_understanding.c.status == "ok"
            )
        ).all()
    position = {i: n for n, i in enumerate(item_ids)}
    out, present = None, np.zeros(len(item_ids), dtype=bool)
    by_path: dict[str, list[str]] = {}
    for item, path in rows:
        if item in position:
            by_path.setdefault(path, []).append(item)
    for path, wanted in by_path.items():
        with np.load(path, allow_pickle=False) as z:
            index = {str(i): n for n, i in enumerate(z["item_ids"])}
            vecs = z["vectors"]
        if out is None:
            out = np.zeros((len(item_ids), vecs.shape[1]), np.float32)
        for item in wanted:
            if item in index:
                out[position[item]] = vecs[index[item]]
                present[position[item]] = True
    return (out if out is not None else np.zeros((len(item_ids), 0), np.float32)), present


def update_sentiment(engine: Engine, overwrite: bool = False) -> int:
    """Score interaction comments (``sentiment`` in [-1, 1], multilingual); returns how many."""
    from avrec.encoders.mood import sentiment

    q = select(t.interactions.c.id, t.interactions.c.comment).where(
        t.interactions.c.comment.is_not(None)
    )
    if not overwrite:
        q = q.where(t.interactions.c.sentiment.is_(None))
    with engine.connect() as conn:
        rows = [(i, c) for i, c in conn.execute(q).all() if str(c).strip()]
    if not rows:
        return 0
    scores = sentiment([c for _, c in rows])
    stmt = (
        update(t.interactions)
        .where(t.interactions.c.id == bindparam("rid"))
        .values(sentiment=bindparam("score"))
    )
    with engine.begin() as conn:
        conn.execute(
            stmt, [{"rid": i, "score": float(s)} for (i, _), s in zip(rows, scores, strict=True)]
        )
    return len(rows)


def describe(engine: Engine, item_id: str) -> dict | None:
    with engine.connect() as conn:
        item = conn.execute(select(t.items).where(t.items.c.item_id == item_id)).mappings().first()
        if item is None:
            return None
        rows = (
            conn.execute(
                select(t.item_understanding).where(t.item_understanding.c.item_id == item_id)
            )
            .mappings()
            .all()
        )
    return {
        "item": {
            k: v for k, v in item.items() if v is not None and k not in ("content_hash", "extra")
        },
        "understanding": {
            r["modality"]: {
                "status": r["status"],
                "encoder": r["encoder"],
                "version": r["version"],
                "reason": r["reason"],
                "attributes": r["attributes"],
            }
            for r in rows
        },
    }


def item_roots(engine: Engine) -> pd.DataFrame:
    """item_id -> dataset root folder (where ingest recorded one)."""
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(
                select(t.items.c.item_id, t.datasets.c.root).join(
                    t.datasets, t.datasets.c.name == t.items.c.dataset, isouter=True
                )
            ).all(),
            columns=["item_id", "root"],
        )
