"""Recommendations, feedback events, profiles, visitors, deleting a user."""

from __future__ import annotations

import time
from functools import partial

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from avrec.feedback.online import polarity
from avrec.feedback.profile import user_profile
from avrec.service import recommend as rec
from avrec.service.faults import degrade
from avrec.service.schemas import (
    Event,
    EventAck,
    RecommendationRequest,
    RecommendationResponse,
    Visitor,
)
from avrec.service.security import (
    cookie_visitor,
    may_read,
    may_write_for,
    new_visitor,
    require_scope,
    set_visitor_cookie,
)
from avrec.storage import tables as t

router = APIRouter(prefix="/api", tags=["users"])


def _check_query(state, query: str | None) -> None:
    if query and query.strip() and state.query_model() is None:
        raise HTTPException(409, "this model has no request encoder: recommend from a history, or train "
                                 "a content/hybrid model with a query encoder")


def _check_items(state, ids: list[str]) -> None:
    unknown = [i for i in ids if i not in state.position]
    if unknown:
        raise HTTPException(404, f"unknown item(s): {', '.join(map(repr, unknown[:5]))}")


@router.get("/users/{user_id}/recommendations", response_model=RecommendationResponse,
            dependencies=[Depends(may_read)])
async def user_recommendations(user_id: str, request: Request, k: int = Query(10, ge=1, le=500),
                               kind: str | None = None, language: str | None = None,
                               q: str | None = Query(None, max_length=2_000),
                               explain: bool = True, exclude_seen: bool = True) -> dict:
    """The hot path. An index search from the user's online vector takes about a millisecond, so
    it runs inline on the event loop: no thread hand-off, and concurrent requests do not fight
    over the GIL (which stretched the tail under load). Model scoring and text requests (an
    encoder call) go to the thread pool so they never block the loop."""
    state = request.app.state.avrec
    if len(user_id) > 256:
        raise HTTPException(422, "user_id longer than 256 characters")
    if not state.knows(user_id):
        raise HTTPException(404, f"unknown user {user_id!r}; post events first or use POST /api/recommendations")
    _check_query(state, q)
    model_user = user_id if user_id not in state.forgotten else None
    call = partial(rec.recommend, state, user_id, None, q, k, kind, language, explain,
                   model_user=model_user, exclude_seen=exclude_seen)
    fast = state.use_index and not (q and q.strip())
    items = call() if fast else await run_in_threadpool(call)
    return {"user_id": user_id, "items": items}


@router.post("/recommendations", response_model=RecommendationResponse)
def anonymous_recommendations(body: RecommendationRequest, request: Request) -> dict:
    state = request.app.state.avrec
    _check_items(state, body.history)
    _check_query(state, body.query)
    if not body.history and not (body.query and body.query.strip()):
        raise HTTPException(422, "give a history, a query, or both")
    items = rec.recommend(state, None, body.history, body.query, body.k, body.kind,
                          body.language, body.explain, exclude_seen=body.exclude_seen)
    return {"user_id": None, "items": items}


@router.post("/visitors", response_model=Visitor)
def create_visitor(request: Request, response: Response) -> dict:
    """A new visitor, or the one whose cookie the browser sent (a reload keeps the visitor);
    the cookie is set (again) either way. A resumed visitor's token is not put in the body, so
    a script in the page cannot read what the HttpOnly cookie hides."""
    resumed = cookie_visitor(request)
    user_id, token = resumed or new_visitor(request.app.state.secret)
    set_visitor_cookie(request, response, user_id, token)
    return {"user_id": user_id, "token": None if resumed else token}


@router.post("/events", response_model=EventAck, status_code=201)
def post_event(event: Event, request: Request, x_api_key: str | None = Header(default=None),
               x_visitor_token: str | None = Header(default=None)) -> dict:
    """Stored durably (committed) before the answer; then the user's state is updated."""
    start = time.perf_counter()
    state = request.app.state.avrec
    may_write_for(request, event.user_id, x_api_key, x_visitor_token)
    _check_items(state, [event.item_id])
    values = event.model_dump()
    try:
        with state.engine.begin() as conn:
            new_id = conn.execute(insert(t.feedback_events).values(**values)
                                  .returning(t.feedback_events.c.id)).scalar_one()
    except IntegrityError:
        if not event.request_id:
            raise
        with state.engine.connect() as conn:  # a retried request: same answer, no duplicate
            new_id = conn.execute(select(t.feedback_events.c.id).where(
                t.feedback_events.c.request_id == event.request_id)).scalar_one()
        st = state.user_state(event.user_id)
        return {"id": new_id, "user_id": event.user_id,
                "polarity": polarity(event.event, event.value, event.watch_fraction),
                "history_size": len(st.history), "request_id": event.request_id}
    sign = state.online.apply(event.user_id, event.item_id, event.event, event.value,
                              event.watch_fraction, state.training_history(event.user_id))
    metrics = request.app.state.metrics
    elapsed = time.perf_counter() - start
    metrics.events.inc()
    metrics.event_to_state.observe(elapsed)
    metrics.samples.add("event_to_state", elapsed)
    return {"id": new_id, "user_id": event.user_id, "polarity": sign,
            "history_size": len(state.user_state(event.user_id).history), "request_id": event.request_id}


@router.get("/users/{user_id}/profile", dependencies=[Depends(may_read)])
def profile(user_id: str, request: Request, response: Response) -> dict:
    state = request.app.state.avrec
    if not state.knows(user_id):
        raise HTTPException(404, f"unknown user {user_id!r}")
    user, cat, pos = state.user_state(user_id), state.catalog, state.position
    # without the database: the catalog facets only (no stored understanding)
    portrait = degrade(response, lambda: user_profile(user, cat, pos, state.engine),
                       lambda: user_profile(user, cat, pos))
    return {"user_id": user_id, **portrait}


@router.delete("/users/{user_id}", dependencies=[Depends(require_scope("admin"))])
def delete_user(user_id: str, request: Request) -> dict:
    """Removes the user's interactions, events, profile and online state."""
    from avrec.storage.users import delete_user as delete_rows

    state = request.app.state.avrec
    removed = delete_rows(user_id, state.engine)
    state.online.drop(user_id)
    state.forgotten.add(user_id)
    return {"user_id": user_id, "removed": removed}
