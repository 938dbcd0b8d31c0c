"""The service's ads: the catalog loaded at start (``ads_file``), a scorer per served model,
and a ledger read from the ``ad_events`` table (what each person was shown today, what each ad
spent today), so caps and budgets hold across restarts and processes sharing the database."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, select

from avrec.ads.catalog import Ad, encode_ads, load_ads
from avrec.ads.eligibility import Context, Demand, Pacing, Person
from avrec.ads.engagement import EngagementModel, default_engagement
from avrec.ads.media import catalog_visuals, encode_ad_media, with_media
from avrec.ads.scoring import AdScorer
from avrec.ads.select import AdRequest, AdSelector, Selection
from avrec.storage import tables as t

log = logging.getLogger(__name__)


def _attributes(engine: Engine, user_id: str) -> dict | None:
    """The user row's attributes (age, locale, ...), None where there is no row."""
    with engine.connect() as conn:
        attrs = conn.execute(
            select(t.users.c.attributes).where(t.users.c.user_id == user_id)
        ).scalar_one_or_none()
    return attrs if isinstance(attrs, dict) else None


class DbLedger:
    """:class:`avrec.ads.eligibility.Ledger` over the ``ad_events`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def shown(self, user_id: str | None, day: dt.date) -> Mapping[str, int]:
        c = t.ad_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.ad_id, func.count())
                .where(c.user_id == user_id, c.day == day.isoformat(), c.event == "impression")
                .group_by(c.ad_id)
            ).all()
        return {ad: int(n) for ad, n in rows}

    def spent(self, day: dt.date) -> Mapping[str, float]:
        c = t.ad_events.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.ad_id, func.sum(c.cost)).where(c.day == day.isoformat()).group_by(c.ad_id)
            ).all()
        return {ad: float(s or 0.0) for ad, s in rows}


class AdBook:
    """The ads in force: the catalog, its text vectors and the engagement model, and a
    selector for the model being served (built on first use, rebuilt after a model swap)."""

    def __init__(self, path: Path, engagement: Path | None, seed: int = 0, *, pacing: bool = True):
        self.path = path
        self.ads: list[Ad] = load_ads(path)
        self.by_id = {ad.ad_id: ad for ad in self.ads}
        self.vectors = encode_ads(self.ads)
        self.visuals = encode_ad_media(self.ads)  # an unreadable creative stops the start
        self.engagement = (
            EngagementModel.load(engagement) if engagement is not None else default_engagement()
        )
        self.pacing = Pacing(seed=seed, enabled=pacing)
        # the day's demand seen so far, for pacing: kept across model swaps
        self.demand = Demand(self.pacing.half_life, self.pacing.min_people)
        self._lock = threading.Lock()
        self._built: tuple[object, int, AdSelector] | None = None

    def selector(self, state) -> AdSelector:
        """The selector for the served model and catalog (rebuilt after a model swap, or
        after items were added: ``POST /api/items`` grows the model's catalog in place)."""
        n_items = len(state.model.fitted_parts()[1])
        with self._lock:
            built = self._built
            if built is None or built[0] is not state.model or built[1] != n_items:
                from avrec.encoders.pipeline import encode_item_texts
                from avrec.models.capabilities import content_part

                part = content_part(state.model)
                vectors = (
                    part.vectors
                    if part is not None and part.vectors.shape[1] == self.vectors.shape[1]
                    else encode_item_texts(state.items.frame)
                )
                scorer = AdScorer(
                    state.model,
                    self.ads,
                    vectors,
                    self.vectors,
                    item_visuals=self._catalog_visuals(state),
                    ad_visuals=self.visuals,
                )
                selector = AdSelector(self.ads, scorer, self.engagement, self.pacing, self.demand)
                self._built = built = (state.model, n_items, selector)
            return built[2]

    def _catalog_visuals(self, state):
        """The served catalog's visual vectors from the encoders' cache (no model work on
        the request path), None where no ad has a picture."""
        if not self.visuals.any():
            return None
        c = t.items.c
        with state.engine.connect() as conn:  # a saved model's catalog keeps no media paths
            rows = conn.execute(
                select(c.item_id, c.image, c.video).where(
                    c.image.is_not(None) | c.video.is_not(None)
                )
            ).all()
        media = pd.DataFrame(rows, columns=["item_id", "image", "video"])
        frame = with_media(state.items.frame[["item_id"]], media)
        vectors, missing = catalog_visuals(frame, state.media_root_for())
        if missing:
            log.info("ads: %d catalog items' images or videos are not encoded yet", missing)
        return vectors

    def select(self, state, user_id: str, context_item_id: str, slots: int) -> Selection:
        """The ads for ``user_id`` next to ``context_item_id`` now (known item; any user)."""
        history = list(state.user_snapshot(user_id).history) if state.knows(user_id) else []
        if context_item_id not in history:
            history.append(context_item_id)  # the video being watched is part of the moment
        row = {
            name: state.items.field(context_item_id, name)
            for name in ("item_id", "kind", "genres", "tags", "language")
        }
        person = Person.from_attributes(user_id, _attributes(state.engine, user_id), history)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        request = AdRequest(person, tuple(history), Context.from_row(row), now)
        return self.selector(state).select([request], DbLedger(state.engine), slots)[0]
