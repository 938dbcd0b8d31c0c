"""Ads: ``POST /api/ads/select`` (the ads to show next to a video), and the ad events that
``POST /api/events`` hands over (an event with an ``ad_id``), stored in ``ad_events``."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from avrec.service.schemas import AdSelect, AdSelection, Event
from avrec.service.security import may_read
from avrec.storage import tables as t

router = APIRouter(prefix="/api/ads", tags=["ads"])


def ad_book(request: Request):
    book = getattr(request.app.state, "ads", None)
    if book is None:
        raise HTTPException(
            409, "this service has no ad catalog: start it with AVREC_ADS=ads.csv (docs/ads.md)"
        )
    return book


@router.post("/select", response_model=AdSelection)
async def select_ads(
    body: AdSelect,
    request: Request,
    x_api_key: str | None = Header(default=None),
    x_visitor_token: str | None = Header(default=None),
) -> dict:
    """The eligible ads for this person next to this video, best expected value (P(engage) ×
    bid) first, each with its reasons; ``excluded`` counts the ads left out by reason. Reading
    a person's history needs what their recommendations need (a read key or their token).
    Nothing is recorded: the client posts an ``impression`` event for each ad it shows."""
    await may_read(request, body.user_id, x_api_key, x_visitor_token)
    book = ad_book(request)
    state = request.app.state.avrec
    if body.context_item_id not in state.items:
        raise HTTPException(404, f"unknown item {body.context_item_id!r} (context_item_id)")
    chosen = await run_in_threadpool(
        book.select, state, body.user_id, body.context_item_id, body.slots
    )
    return {
        "user_id": body.user_id,
        "context_item_id": body.context_item_id,
        "ads": chosen.ads,
        "eligible": chosen.eligible,
        "excluded": chosen.excluded,
    }


def store_ad_event(request: Request, state, event: Event, response: Response) -> dict:
    """An ad's impression, click or skip (access already checked). A click costs the ad's bid
    and must follow an impression of that ad to that person the same day (one click per
    impression), so clicks cannot spend a budget on ads nobody was shown."""
    book = ad_book(request)
    ad = book.by_id.get(event.ad_id)
    if ad is None:
        raise HTTPException(404, f"unknown ad {event.ad_id!r}")
    if event.item_id not in state.items:
        raise HTTPException(404, f"unknown item {event.item_id!r} (the video the ad ran next to)")
    day = dt.datetime.now(dt.UTC).date().isoformat()
    c = t.ad_events.c
    with state.user_lock(event.user_id):
        if event.request_id is not None and _stored(state, event) is not None:
            return _replay(state, event, response)  # a retry: before the click check
        try:
            with state.engine.begin() as conn:
                if event.event == "click":
                    counts = dict(
                        conn.execute(
                            select(c.event, func.count())
                            .where(c.user_id == event.user_id, c.ad_id == ad.ad_id, c.day == day)
                            .group_by(c.event)
                        ).all()
                    )
                    if counts.get("click", 0) >= counts.get("impression", 0):
                        raise HTTPException(
                            409,
                            f"a click on ad {ad.ad_id!r} needs an impression of it to this "
                            "person today (post the impression first)",
                        )
                new_id = conn.execute(
                    insert(t.ad_events)
                    .values(
                        user_id=event.user_id,
                        ad_id=ad.ad_id,
                        context_item_id=event.item_id,
                        event=event.event,
                        cost=ad.bid if event.event == "click" else 0.0,
                        day=day,
                        request_id=event.request_id,
                    )
                    .returning(c.id)
                ).scalar_one()
        except IntegrityError:
            if not event.request_id:
                raise
            return _replay(state, event, response)
    return _ack(state, event, new_id)


def _ack(state, event: Event, event_id: int, replayed: bool = False) -> dict:
    known = state.knows(event.user_id)
    return {
        "id": event_id,
        "user_id": event.user_id,
        "polarity": 0,  # an ad's event says nothing about the video it ran next to
        "history_size": len(state.user_snapshot(event.user_id).history) if known else 0,
        "request_id": event.request_id,
        "replayed": replayed,
    }


def _stored(state, event: Event):
    """The stored ad event with this user's ``request_id`` (None: none)."""
    c = t.ad_events.c
    with state.engine.connect() as conn:
        return conn.execute(
            select(c.id, c.ad_id, c.context_item_id, c.event).where(
                c.user_id == event.user_id, c.request_id == event.request_id
            )
        ).one_or_none()


def _replay(state, event: Event, response: Response) -> dict:
    row = _stored(state, event)
    if row is None or (row.ad_id, row.context_item_id, row.event) != (
        event.ad_id,
        event.item_id,
        event.event,
    ):
        raise HTTPException(
            409,
            f"request_id {event.request_id!r} was already used by user {event.user_id!r} for "
            "a different ad event; use a new request_id for a new event",
        )
    response.status_code = 200
    return _ack(state, event, row.id, replayed=True)
