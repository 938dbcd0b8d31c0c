"""Choosing ads: the eligible ads (``ads.eligibility``) ranked by expected value =
P(engage | person, ad, context video) × bid, with the reasons for each.

Scoring is batched (:meth:`AdSelector.engagement`: the signals of ``ads.scoring`` through the
engagement model for many requests at once); choosing is one request at a time
(:meth:`AdSelector.choose`), because caps, budgets and pacing depend on what earlier requests
were shown and spent.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avrec.ads.catalog import Ad
from avrec.ads.eligibility import (
    Context,
    Demand,
    Ledger,
    Pacing,
    Person,
    exclusion,
    utc_day,
)
from avrec.ads.engagement import EngagementModel
from avrec.ads.scoring import FEATURES, AdScorer


@dataclass(frozen=True)
class AdRequest:
    """One ad request: the person (and their history, oldest first), the video being
    watched, and when."""

    person: Person
    history: tuple[str, ...]
    context: Context
    now: dt.datetime


@dataclass
class Selection:
    """The ads chosen for one request, best first, and how many were left out and why."""

    ads: list[dict] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)
    eligible: int = 0


def _reasons(
    terms: dict[str, float], x: np.ndarray, rate: float, p: float, bid: float
) -> list[str]:
    """Sentences for the engagement model's positive terms, largest first, then the value."""
    said = {
        "person": f"fits this person's taste (taste score z = {x[0]:+.2f})",
        "context": f"goes with the video being watched (z = {x[1]:+.2f} from it alone)",
        "content": f"its creative is like the video being watched (text similarity {x[2]:.2f})",
        "interaction": "liked by this person and fits the video, together",
        "visual": "its creative looks like the video being watched "
        f"(image similarity {x[FEATURES.index('visual')]:.2f})",
    }
    # has_visual only moves the baseline where both have pictures: no sentence of its own
    ranked = sorted(terms.items(), key=lambda kv: -kv[1])
    out = [said[f] for f, v in ranked if v > 0 and f in said]
    out.append(f"expected value: P(engage) {p:.4f} × bid {bid:.2f}")
    if rate < 1.0:
        out.append(f"paced: took part with probability {rate:.2f} (budget ahead of the day)")
    return out


class AdSelector:
    def __init__(
        self,
        ads: Sequence[Ad],
        scorer: AdScorer,
        engagement: EngagementModel,
        pacing: Pacing | None = Pacing(),  # noqa: B008 (frozen: one shared default is safe)
        demand: Demand | None = None,
    ):
        """``pacing``: None turns pacing off (budgets and caps still hold). ``demand``: the
        demand seen so far, for demand-aware pacing (default: a new one; pass one to keep
        it across selectors, as the service does across model swaps)."""
        self.ads, self.scorer, self.engagement = list(ads), scorer, engagement
        self.pacing = pacing
        self.demand = (
            None
            if pacing is None or not pacing.demand_aware
            else demand
            if demand is not None
            else Demand(pacing.half_life, pacing.min_people)
        )
        self.bids = np.array([ad.bid for ad in self.ads], dtype=np.float64)

    def features(self, requests: Sequence[AdRequest]) -> np.ndarray:
        """``[n, n_ads, len(FEATURES)]`` signals of every ad for every request."""
        return self.scorer.features(
            [r.person.user_id for r in requests],
            [r.history for r in requests],
            [r.context.item_id for r in requests],
        )

    def choose(
        self, request: AdRequest, x: np.ndarray, ledger: Ledger, slots: int = 1
    ) -> Selection:
        """The ``slots`` best eligible ads for ``request`` given its signals ``x`` ``[n_ads,
        len(FEATURES)]`` and the ``ledger``'s counts (nothing is recorded to the ledger; the
        request counts toward the ads' demand for pacing)."""
        day = utc_day(request.now)
        shown, spent = ledger.shown(request.person.user_id, day), ledger.spent(day)
        p = self.engagement.predict(x)
        value = p * self.bids
        excluded: Counter[str] = Counter()
        eligible = []
        for n, ad in enumerate(self.ads):
            why, rate = exclusion(
                ad,
                request.context,
                request.person,
                request.now,
                shown.get(ad.ad_id, 0),
                spent.get(ad.ad_id, 0.0),
                self.pacing,
                self.demand,
            )
            if why is not None:
                excluded[why] += 1
            else:
                eligible.append((n, rate))
        eligible.sort(key=lambda nr: (-value[nr[0]], self.ads[nr[0]].ad_id))
        chosen = []
        for n, rate in eligible[:slots]:
            ad = self.ads[n]
            chosen.append(
                {
                    "ad_id": ad.ad_id,
                    "advertiser": ad.advertiser,
                    "text": ad.text,
                    "item_id": ad.item_id,
                    "image": ad.image,
                    "video": ad.video,
                    "bid": ad.bid,
                    "p_engage": float(p[n]),
                    "expected_value": float(value[n]),
                    "reasons": _reasons(
                        self.engagement.terms(x[n]), x[n], rate, float(p[n]), ad.bid
                    ),
                }
            )
        return Selection(chosen, dict(excluded), len(eligible))

    def select(
        self, requests: Sequence[AdRequest], ledger: Ledger, slots: int = 1
    ) -> list[Selection]:
        """Each request's choice, in order, against the same ledger (not recorded to it)."""
        x = self.features(requests)
        return [self.choose(r, x[n], ledger, slots) for n, r in enumerate(requests)]


__all__ = ["FEATURES", "AdRequest", "AdSelector", "Selection"]
