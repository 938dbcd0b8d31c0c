"""Admin endpoints of the learning loop (API key with the 'admin' scope): the model registry
(versions, the promoted one), promotion and rollback, and training rounds from the database
(:mod:`avrec.service.training`) — what ``avrec models`` and ``avrec retrain`` do, over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from avrec.service.errors import ClientError
from avrec.service.security import require_scope
from avrec.storage.registry import ModelVersion

router = APIRouter(
    prefix="/api/admin/models", tags=["admin"], dependencies=[Depends(require_scope("admin"))]
)

VersionId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]


class RetrainBody(BaseModel):
    """One round of the learning loop (``avrec retrain``)."""

    model_config = ConfigDict(extra="forbid")
    #: the model to train (default: the recommended one for the catalog)
    model: str | None = Field(None, max_length=100)
    #: NDCG@10 loss the promotion gate tolerates
    margin: float = Field(0.0, ge=0.0, le=1.0)
    #: train only when at least this many events arrived since the served version's data
    min_new_events: int = Field(1, ge=1, le=1_000_000_000)


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: VersionId
    note: str | None = Field(None, max_length=500)


def _version(v: ModelVersion) -> dict:
    return {
        "version": v.version,
        "model": v.model,
        "path": str(v.path),
        "created_at": v.created_at.isoformat()
        if isinstance(v.created_at, datetime)
        else v.created_at,
        "meta": v.meta,
    }


@router.get("")
def list_versions(request: Request) -> dict:
    """Every registered version (oldest first) and the promoted one (null before any)."""
    from avrec.storage import registry

    engine = request.app.state.avrec.engine
    served = registry.promoted(engine)
    return {
        "versions": [_version(v) for v in registry.versions(engine)],
        "promoted": served.version if served is not None else None,
    }


@router.post("/promote")
def promote(request: Request, body: PromoteBody) -> dict:
    """Serve ``version`` (404 when it is not registered, 409 when its folder is gone); a
    service that follows the registry swaps to it without a restart."""
    from avrec.storage import registry

    engine = request.app.state.avrec.engine
    if registry.get(engine, body.version, missing_ok=True) is None:
        raise ClientError(404, f"no registered model version {body.version!r}", ["body", "version"])
    try:
        found = registry.promote(engine, body.version, body.note)
    except registry.RegistryError as exc:
        raise ClientError(409, str(exc), ["body", "version"]) from None
    return {"promoted": found.version}


@router.post("/rollback")
def rollback(request: Request) -> dict:
    """Serve again the version served before the current one (409 when there is none)."""
    from avrec.storage import registry

    try:
        found = registry.rollback(request.app.state.avrec.engine)
    except registry.RegistryError as exc:
        raise ClientError(409, str(exc)) from None
    return {"promoted": found.version}


@router.post("/retrain", status_code=202)
async def retrain(request: Request, body: RetrainBody | None = None) -> dict:
    """Start one training round from the database in its own process (202 with the job; 409
    while another runs). The round trains a candidate, checks it against the served version
    and promotes it only if it is not significantly worse; ``GET .../jobs/{id}`` says how it
    went."""
    from avrec.models.registry import available_models
    from avrec.service.training import JobConflict

    body = body or RetrainBody.model_validate({})
    if body.model is not None and body.model not in available_models():
        raise ClientError(
            422,
            f"unknown model {body.model!r}; available: {', '.join(available_models())}",
            ["body", "model"],
        )
    try:
        job = await run_in_threadpool(
            request.app.state.training.start, body.model, body.margin, body.min_new_events
        )
    except JobConflict as exc:
        raise ClientError(409, str(exc)) from None
    return job.describe()


@router.get("/jobs/{job_id}")
def job(
    request: Request, job_id: Annotated[str, Path(max_length=64, pattern=r"^[0-9a-f]+$")]
) -> dict:
    """A training round: running, succeeded or failed, and the last lines it wrote (the
    round's one-line summary says whether the candidate was promoted and why)."""
    found = request.app.state.training.get(job_id)
    if found is None:
        raise ClientError(404, f"no training job {job_id!r}", ["path", "job_id"])
    return found.describe()
