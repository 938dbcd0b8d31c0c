"""Recommendations, feedback events, profiles, visitors, deleting a user."""

from __future__ import annotations

import hashlib
import json
import time
from functools import partial
from typing import Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from avrec.feedback.online import polarity
from avrec.feedback.profile import user_profile
from avrec.rerank.apply import check_options
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
        raise HTTPException(
            409,
            "this model has no request encoder: recommend from a history, or train "
            "a content/hybrid model with a query encoder",
        )


def _check_items(state, ids: list[str]) -> None:
    unknown = state.items.unknown(ids)
    if unknown:
        raise HTTPException(404, f"unknown item(s): {', '.join(map(repr, unknown[:5]))}")


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationResponse,
    dependencies=[Depends(may_read)],
)
async def user_recommendations(
    user_id: str,
    request: Request,
    k: int = Query(10, ge=1, le=500),
    kind: str | None = None,
    language: str | None = None,
    q: str | None = Query(None, max_length=2_000),
    explain: bool = True,
    exclude_seen: bool = True,
    rerank: Literal["none", "mmr", "dpp", "calibrated"] = "none",
    diversity: float = Query(0.0, ge=0, le=1, allow_inf_nan=False),
    debias: float = Query(0.0, ge=0, le=10, allow_inf_nan=False),
) -> dict:
    """The hot path. An index search from the user's online vector takes about a millisecond, so
    it runs inline on the event loop: no thread hand-off, and concurrent requests do not fight
    over the GIL (which stretched the tail under load). Model scoring and text requests (an
    encoder call) go to the thread pool so they never block the loop."""
    state = request.app.state.avrec
    if len(user_id) > 256:
        raise HTTPException(422, "user_id longer than 256 characters")
    if not state.knows(user_id):
        raise HTTPException(
            404, f"unknown user {user_id!r}; post events first or use POST /api/recommendations"
        )
    _check_query(state, q)
    model_user = user_id if user_id not in state.forgotten else None
    call = partial(
        rec.recommend,
        state,
        user_id,
        None,
        q,
        max(k, state.server.depth),
        kind,
        language,
        explain,
        model_user=model_user,
        exclude_seen=exclude_seen,
        options=check_options(rerank, diversity, debias),
        rules=request.app.state.rules.current(state.items.frame),
    )
    fast = state.use_index and not (q and q.strip())
    ranked = call() if fast else await run_in_threadpool(call)
    list_id, items = state.server.show(user_id, ranked, k)
    return {"user_id": user_id, "list_id": list_id, "items": items}


@router.post("/recommendations", response_model=RecommendationResponse)
def anonymous_recommendations(body: RecommendationRequest, request: Request) -> dict:
    state = request.app.state.avrec
    _check_items(state, body.history)
    _check_query(state, body.query)
    if not body.history and not (body.query and body.query.strip()):
        raise HTTPException(422, "give a history, a query, or both")
    ranked = rec.recommend(
        state,
        None,
        body.history,
        body.query,
        max(body.k, state.server.depth),
        body.kind,
        body.language,
        body.explain,
        exclude_seen=body.exclude_seen,
        options=check_options(body.rerank, body.diversity, body.debias),
        rules=request.app.state.rules.current(state.items.frame),
    )
    list_id, items = state.server.show(None, ranked, body.k)
    return {"user_id": None, "list_id": list_id, "items": items}


@router.post("/visitors", response_model=Visitor)
def create_visitor(request: Request, response: Response) -> dict:
    """A new visitor, or the one whose cookie the browser sent (a reload keeps the visitor);
    the cookie is set (again) either way. A resumed visitor's token is not put in the body, so
    a script in the page cannot read what the HttpOnly cookie hides."""
    resumed = cookie_visitor(request)
    user_id, token = resumed or new_visitor(request.app.state.secret)
    set_visitor_cookie(request, response, user_id, token)
    return {"user_id": user_id, "token": None if resumed else token}


@router.post(
    "/events",
    response_model=EventAck,
    status_code=201,
    responses={
        200: {"model": EventAck, "description": "a replay of a stored request_id"},
        409: {"description": "request_id already used with another body"},
    },
)
def post_event(
    event: Event,
    request: Request,
    response: Response,
    x_api_key: str | None = Header(default=None),
    x_visitor_token: str | None = Header(default=None),
) -> dict:
    """Stored durably (committed) before the answer; then the user's state is updated.

    ``request_id`` makes a retry safe: it is scoped to its user, and the event's canonical body
    (sorted-key JSON) is stored with it as a sha256. The same user, id and body again answers
    200 with ``replayed: true`` and the stored event's id, storing nothing; the same user and
    id with another body is a 409. Insert and online update run under the user's lock, which
    a deletion of that user takes too (see ``delete_user``)."""
    start = time.perf_counter()
    may_write_for(request, event.user_id, x_api_key, x_visitor_token)
    if event.ad_id is not None:  # an ad's impression, click or skip: ad_events, not feedback
        from avrec.service.routes_ads import store_ad_event

        with request.app.state.swap_lock.read():
            return store_ad_event(request, request.app.state.avrec, event, response)
    values = event.model_dump(exclude={"ad_id"})
    body_hash = hashlib.sha256(
        json.dumps(values, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    # a model swap (service/follow.py) waits for this event to be stored and applied, so the
    # new state's catch-up sees it; an event after the swap lands on the new state
    with request.app.state.swap_lock.read():
        state = request.app.state.avrec
        _check_items(state, [event.item_id])
        return _store_event(request, state, event, values, body_hash, response, start)


def _store_event(request, state, event: Event, values, body_hash, response, start) -> dict:
    with state.user_lock(event.user_id):
        try:
            with state.engine.begin() as conn:
                new_id = conn.execute(
                    insert(t.feedback_events)
                    .values(**values, body_hash=body_hash)
                    .returning(t.feedback_events.c.id)
                ).scalar_one()
        except IntegrityError:
            if not event.request_id:
                raise
            return _replay(state, event, values, body_hash, response)
        sign = state.online.apply(
            event.user_id,
            event.item_id,
            event.event,
            event.value,
            event.watch_fraction,
            state.training_history(event.user_id),
        )
        history_size = len(state.user_state(event.user_id).history)
    metrics = request.app.state.metrics
    elapsed = time.perf_counter() - start
    metrics.events.inc()
    metrics.event_to_state.observe(elapsed)
    metrics.samples.add("event_to_state", elapsed)
    return {
        "id": new_id,
        "user_id": event.user_id,
        "polarity": sign,
        "history_size": history_size,
        "request_id": event.request_id,
    }


def _replay(state, event: Event, values: dict, body_hash: str, response: Response) -> dict:
    """The answer to a request_id this user already used (called under the user's lock)."""
    c = t.feedback_events.c
    with state.engine.connect() as conn:
        row = conn.execute(
            select(c.id, c.body_hash, c.item_id, c.event, c.value, c.watch_fraction).where(
                c.user_id == event.user_id, c.request_id == event.request_id
            )
        ).one_or_none()
    if row is None:  # deleted by another process since the conflict
        raise HTTPException(
            409,
            f"request_id {event.request_id!r} conflicted with an event that "
            "is gone now; send the request again",
        )
    same = (
        row.body_hash == body_hash
        if row.body_hash  # rows stored before body hashes:
        else all(
            getattr(row, k) == values[k]  # compare the stored fields
            for k in ("item_id", "event", "value", "watch_fraction")
        )
    )
    if not same:
        raise HTTPException(
            409,
            f"request_id {event.request_id!r} was already used by user "
            f"{event.user_id!r} for a different event; use a new request_id "
            "for a new event",
        )
    response.status_code = 200
    return {
        "id": row.id,
        "user_id": event.user_id,
        "polarity": polarity(event.event, event.value, event.watch_fraction),
        "history_size": len(state.user_state(event.user_id).history),
        "request_id": event.request_id,
        "replayed": True,
    }


@router.get("/users/{user_id}/profile", dependencies=[Depends(may_read)])
def profile(user_id: str, request: Request, response: Response) -> dict:
    state = request.app.state.avrec
    if not state.knows(user_id):
        raise HTTPException(404, f"unknown user {user_id!r}")
    user, facets = state.user_state(user_id), state.items.facets
    # without the database: the catalog facets only (no stored understanding)
    portrait = degrade(
        response,
        lambda: user_profile(user, facets, state.engine),
        lambda: user_profile(user, facets),
    )
    return {"user_id": user_id, **portrait}


@router.delete("/users/{user_id}", dependencies=[Depends(require_scope("admin"))])
def delete_user(user_id: str, request: Request) -> dict:
    """Removes the user everywhere: database rows (interactions, events, user row; on SQLite
    the write-ahead log is truncated too), the per-user arrays of the served model's folder and
    of registered model folders, the per-user lines of registered reports, and the online state.

    Serialization: this runs under the user's lock, which ``post_event`` holds around its insert
    and online update. So an event is either wholly before the deletion (committed and applied,
    then deleted here) or wholly after it (a new user with that ID). One lock per process was
    chosen over a database-only ordering because the online state lives in memory, where no
    transaction reaches. ``avrec users delete`` (another process) cannot take it: delete through
    this endpoint while the service runs."""
    from avrec.privacy import delete_everywhere

    with request.app.state.swap_lock.read():  # not across a model swap (service/follow.py)
        state = request.app.state.avrec

        def drop_memory() -> None:  # right after the rows, before any folder is rewritten
            state.online.drop(user_id)
            state.forgotten.add(user_id)
            if state.server.impressions is not None:  # lists still queued for the log
                state.server.impressions.forget(user_id)

        with state.user_lock(user_id):
            done = delete_everywhere(
                user_id, state.engine, model_dirs=[state.settings.model_dir], after_rows=drop_memory
            )
    if done["failed"]:
        where = "; ".join(f"{path}: {why}" for path, why in done["failed"].items())
        raise HTTPException(
            503,
            "the user's rows and online state are deleted, but these folders could not be "
            f"rewritten and still hold them: {where}; fix the cause and send DELETE again",
            headers={"Retry-After": "60"},
        )
    return {
        "user_id": user_id,
        "removed": done["database"],
        "models": done["models"],
        "reports": done["reports"],
    }
