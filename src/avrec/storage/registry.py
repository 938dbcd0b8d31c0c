"""The model registry: trained model folders as versions, and which one is served.

A version is a saved model folder, registered as an ``artifacts`` row of kind ``model``: its id
is ``<model name>-<first 12 hex digits of the sha256 of its manifest.json>`` (the manifest
holds the config, library versions and save time, so a retrained model is a new version),
with the folder's path and, in ``meta``, the config, the event watermark of the data it was
trained on (``training_data.json`` of ``avrec train --from-db``) and any metrics given.
Promotions are appended to ``model_promotions``; the last one is served. Rolling back
promotes again the version served before the current one, so the history stays whole.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, insert, select

from avrec.errors import AvrecError
from avrec.storage import tables as t

MANIFEST = "manifest.json"
TRAINING_DATA = "training_data.json"


class RegistryError(AvrecError, ValueError):
    """A version that is not registered, a folder that is not a model, nothing to roll back."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    model: str
    path: Path
    meta: dict
    created_at: object = None


def version_of(folder: Path) -> str:
    """The version id of a saved model folder (see the module)."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        raise RegistryError(f"{folder} is not a saved model (no {MANIFEST})")
    raw = manifest.read_bytes()
    name = json.loads(raw).get("model", "model")
    return f"{name}-{hashlib.sha256(raw).hexdigest()[:12]}"


def register(engine: Engine, folder: Path, metrics: dict | None = None) -> ModelVersion:
    """Record ``folder`` as a version (once: registering it again returns the same row)."""
    folder = Path(folder).resolve()
    version = version_of(folder)
    found = get(engine, version, missing_ok=True)
    if found is not None:
        return found
    manifest = json.loads((folder / MANIFEST).read_text())
    trained_on = folder / TRAINING_DATA
    data = json.loads(trained_on.read_text()) if trained_on.is_file() else None
    meta = {
        "config": manifest.get("config"),
        "training_data": data,
        "event_watermark": (data or {}).get("event_watermark"),
        "metrics": metrics,
    }
    with engine.begin() as conn:
        conn.execute(
            insert(t.artifacts).values(
                kind="model",
                name=manifest.get("model", "model"),
                version=version,
                path=str(folder),
                content_hash=version.rsplit("-", 1)[-1],
                meta=meta,
            )
        )
    added = get(engine, version)
    assert added is not None  # just inserted
    return added


def _row(r) -> ModelVersion:
    return ModelVersion(r.version, r.name, Path(r.path), r.meta or {}, r.created_at)


def get(engine: Engine, version: str, missing_ok: bool = False) -> ModelVersion | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(t.artifacts).where(
                t.artifacts.c.kind == "model", t.artifacts.c.version == version
            )
        ).first()
    if row is None and not missing_ok:
        raise RegistryError(f"no registered model version {version!r} (see avrec models list)")
    return None if row is None else _row(row)


def versions(engine: Engine) -> list[ModelVersion]:
    """Every registered version, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.artifacts).where(t.artifacts.c.kind == "model").order_by(t.artifacts.c.id)
        ).all()
    return [_row(r) for r in rows]


def history(engine: Engine) -> list[tuple[str, str | None, object]]:
    """``(version, note, promoted_at)`` of every promotion, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(t.model_promotions).order_by(t.model_promotions.c.id)).all()
    return [(r.version, r.note, r.promoted_at) for r in rows]


def promoted(engine: Engine) -> ModelVersion | None:
    """The version to serve (the last promotion), None before any."""
    past = history(engine)
    return get(engine, past[-1][0]) if past else None


def promote(engine: Engine, version: str, note: str | None = None) -> ModelVersion:
    found = get(engine, version)
    assert found is not None
    if not (found.path / MANIFEST).is_file():
        raise RegistryError(f"version {version} is registered but {found.path} is gone")
    with engine.begin() as conn:
        conn.execute(insert(t.model_promotions).values(version=version, note=note))
    return found


ROLLBACK = "rollback from "


def rollback(engine: Engine) -> ModelVersion:
    """Promote again the version served before the current one; rolling back again goes one
    further back (a rollback undoes the promotion it follows, it is not a promotion to undo)."""
    served: list[str] = []
    for version, note, _ in history(engine):
        if note and note.startswith(ROLLBACK) and len(served) > 1:
            served.pop()
        else:
            served.append(version)
    if len(served) < 2:
        raise RegistryError("no earlier promoted version to roll back to")
    return promote(engine, served[-2], note=f"{ROLLBACK}{served[-1]}")


# ---- retrain requests ---------------------------------------------------------------------
#: ``artifacts`` rows of this kind ask the next ``avrec retrain`` round to train and promote a
#: new version whatever the event count and the gate say (``avrec users forget``: parts of the
#: served model that cannot be updated exactly still hold a deleted user). They name no user.
RETRAIN_REQUEST = "retrain"


def request_retrain(engine: Engine, reason: str, meta: dict | None = None) -> None:
    """Record that the served model must be retrained (``reason``: one line, no user IDs)."""
    import uuid

    with engine.begin() as conn:
        conn.execute(
            insert(t.artifacts).values(
                kind=RETRAIN_REQUEST,
                name=reason[:256],
                version=uuid.uuid4().hex[:16],
                path="",
                meta=meta or {},
            )
        )


def retrain_requests(engine: Engine) -> list[tuple[int, str, object]]:
    """``(id, reason, created_at)`` of the open retrain requests, oldest first."""
    a = t.artifacts.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.id, a.name, a.created_at).where(a.kind == RETRAIN_REQUEST).order_by(a.id)
        ).all()
    return [(r.id, r.name, r.created_at) for r in rows]


def close_retrain_requests(engine: Engine, ids: list[int]) -> None:
    """Remove the requests ``ids`` (a version trained after them is promoted)."""
    if ids:
        with engine.begin() as conn:
            conn.execute(delete(t.artifacts).where(t.artifacts.c.id.in_(ids)))
