"""Admin endpoints (API key with the 'admin' scope): server-side latency percentiles."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from avrec.service.security import require_scope

router = APIRouter(
    prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_scope("admin"))]
)


@router.get("/latency")
def latency(request: Request, reset: bool = False) -> dict:
    """Exact percentiles of the last 200,000 durations per route (successful answers), measured
    in the server from request in to response out, and of ``event_to_state`` (an event received
    -> committed to the database -> the user's online state updated)."""
    samples = request.app.state.metrics.samples
    out = samples.summary()
    if reset:
        samples.clear()
    return out
