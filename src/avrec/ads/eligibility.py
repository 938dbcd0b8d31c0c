"""Which ads may run for a request: flight dates, targeting, brand safety, frequency caps,
budgets and pacing. Every rule is a plain function of the ad, the request and what was already
shown and spent today (a :class:`Ledger`), so the service, the CLI and the simulation obey the
same rules.

Days are UTC days. A frequency cap counts the person's impressions of the ad today; a budget
counts the ad's spend today (clicks × bid). Pacing spreads a budget over the day: an ad whose
share of its budget spent runs ahead of its schedule (:class:`Pacing`) takes part in a request
only with a probability that falls to 0 when it is ``margin`` ahead; the draw is a hash of the
seed, the ad, the person and the time, so a run is repeatable. Pacing is demand-aware
(:class:`Demand`): an ad ahead of its schedule is throttled only while the forecast of what it
can still spend today (its recent rate of eligible requests × its spend per request it took
part in × the time left) exceeds its remaining budget with a margin; when demand dries up it
runs free, so a campaign whose demand comes early still spends its budget. The forecast reads
only the requests seen so far.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from avrec.ads.catalog import Ad
from avrec.data.dataset import split_multi

#: why an ad was left out, in the order they are checked
REASONS = (
    "flight",
    "targeting",
    "brand_safety",
    "already_watched",
    "frequency_cap",
    "budget",
    "paced",
)


@dataclass(frozen=True)
class Context:
    """The video an ad would run next to (lower-cased attributes)."""

    item_id: str
    kind: str | None = None
    genres: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    language: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Context:
        """From a catalog row (``item_id``, ``kind``, ``genres``, ``tags``, ``language``)."""

        def text(name: str) -> str | None:
            value = row.get(name)
            return str(value).strip().lower() if isinstance(value, str) and value.strip() else None

        def values(name: str) -> frozenset[str]:
            return frozenset(v.lower() for v in split_multi(row.get(name)))

        return cls(
            str(row["item_id"]), text("kind"), values("genres"), values("tags"), text("language")
        )


@dataclass(frozen=True)
class Person:
    """Who the ad would be shown to: attributes where known, and what they already watched."""

    user_id: str | None
    age: int | None = None
    locale: str | None = None
    seen: frozenset[str] = frozenset()

    @classmethod
    def from_attributes(
        cls, user_id: str | None, attributes: Mapping[str, object] | None, seen=()
    ) -> Person:
        """``attributes``: a user row's (``age``; ``locale``, else ``country``, else ``zip``)."""
        attrs = attributes or {}
        age = attrs.get("age")
        try:
            age_value = int(float(str(age))) if age is not None and str(age).strip() else None
        except ValueError:
            age_value = None
        locale = next((attrs[k] for k in ("locale", "country") if attrs.get(k)), None)
        return cls(
            user_id,
            age_value,
            str(locale).strip().lower() if locale is not None else None,
            frozenset(seen),
        )


class Ledger(Protocol):
    """What was shown and spent on a day (the service reads its ``ad_events`` table)."""

    def shown(self, user_id: str | None, day: dt.date) -> Mapping[str, int]:
        """The person's impressions per ad that day."""
        ...

    def spent(self, day: dt.date) -> Mapping[str, float]:
        """Each ad's spend that day."""
        ...


@dataclass
class MemoryLedger:
    """A ledger in memory (CLI batches, simulations, tests)."""

    impressions: dict[tuple[str | None, dt.date], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    spending: dict[dt.date, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )

    def shown(self, user_id: str | None, day: dt.date) -> Mapping[str, int]:
        return self.impressions.get((user_id, day), {})

    def spent(self, day: dt.date) -> Mapping[str, float]:
        return self.spending.get(day, {})

    def record(self, event: str, user_id: str | None, ad: Ad, day: dt.date) -> float:
        """An impression counts against the cap; a click costs the bid. Returns the cost."""
        if event == "impression":
            self.impressions[(user_id, day)][ad.ad_id] += 1
            return 0.0
        if event == "click":
            self.spending[day][ad.ad_id] += ad.bid
            return ad.bid
        return 0.0


def day_fraction(now: dt.datetime) -> float:
    """Share of the UTC day gone at ``now`` (naive times are read as UTC)."""
    now = now if now.tzinfo is None else now.astimezone(dt.UTC).replace(tzinfo=None)
    midnight = dt.datetime.combine(now.date(), dt.time())
    return (now - midnight).total_seconds() / 86_400.0


def utc_day(now: dt.datetime) -> dt.date:
    return (now if now.tzinfo is None else now.astimezone(dt.UTC)).date()


@dataclass(frozen=True)
class Pacing:
    """Spend spread over the day. The schedule is ``min(1, (1 + lead) × share of the day)`` of
    the budget: a little ahead of an even spread, so that a quiet evening does not leave the
    budget unspent. ``margin``: how far (share of the budget) spend may run ahead of the
    schedule before the ad stops taking part (at least three bids' worth).

    Demand-aware: given a ``forecast`` of what the ad can still spend today (:class:`Demand`),
    an ad ahead of its schedule is throttled only while the forecast exceeds the remaining
    budget by more than ``demand_margin`` (a share of it); otherwise it takes part in every
    request. ``half_life`` (seconds) and ``min_people`` configure the :class:`Demand` a
    selector keeps for it; ``demand_aware=False`` paces on the schedule alone."""

    seed: int = 0
    margin: float = 0.05
    lead: float = 0.15
    demand_margin: float = 0.25
    half_life: float = 3600.0
    min_people: int = 20
    demand_aware: bool = True

    def rate(self, ad: Ad, spent: float, now: dt.datetime, forecast: float | None = None) -> float:
        """The probability that ``ad`` takes part in a request at ``now``; ``forecast``: the
        spend still deliverable today (None: unknown, pace on the schedule alone)."""
        margin = max(self.margin, 3 * ad.bid / ad.daily_budget)
        schedule = min(1.0, (1.0 + self.lead) * day_fraction(now))
        ahead = spent / ad.daily_budget - schedule
        if ahead <= 0.0:
            return 1.0
        if forecast is not None and forecast <= (ad.daily_budget - spent) * (
            1.0 + self.demand_margin
        ):
            return 1.0  # demand is drying up: what is left will not outrun the budget
        return float(min(1.0, max(0.0, 1.0 - ahead / margin)))

    def draw(self, ad_id: str, user_id: str | None, now: dt.datetime) -> float:
        """A repeatable uniform number in [0, 1) for this ad, person and moment."""
        key = f"{self.seed}\x1f{ad_id}\x1f{user_id}\x1f{now.isoformat()}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


@dataclass
class _AdDemand:
    decayed: float = 0.0  # exponentially weighted count of people newly eligible
    at: float = 0.0  # seconds of the day at the last update
    eligible: set[str | None] = field(default_factory=set)  # people eligible today
    reached: set[str | None] = field(default_factory=set)  # people it took part for


class Demand:
    """Each ad's demand today, as seen so far, counted in people: caps and "already watched"
    bound what an ad can spend on a person, so a person who asks many times is one
    opportunity, not many. Kept: an exponentially weighted rate of people newly eligible for it
    (all rules but pacing held; half-life ``half_life`` seconds, corrected for the start of the
    day), and the people it took part in a request for. The forecast of its deliverable spend
    for the rest of the day is that rate × its spend per person reached × the seconds left.
    Counts restart each UTC day. Thread-safe; only what :meth:`observe` was told is used, so a
    run in the same order repeats exactly."""

    def __init__(self, half_life: float = 3600.0, min_people: int = 20):
        if half_life <= 0:
            raise ValueError("half_life must be > 0")
        self.tau = half_life / math.log(2.0)
        self.min_people = min_people
        self._day: dt.date | None = None
        self._ads: dict[str, _AdDemand] = {}
        self._lock = threading.Lock()

    def _state(self, ad_id: str, now: dt.datetime) -> _AdDemand:
        day = utc_day(now)
        if day != self._day:
            self._day, self._ads = day, {}
        return self._ads.setdefault(ad_id, _AdDemand())

    def observe(self, ad_id: str, user_id: str | None, now: dt.datetime, took_part: bool) -> None:
        """``ad_id`` was eligible (all rules but pacing held) for ``user_id``'s request at
        ``now``, and took part in it or not."""
        t = day_fraction(now) * 86_400.0
        with self._lock:
            st = self._state(ad_id, now)
            if user_id not in st.eligible:
                st.eligible.add(user_id)
                st.decayed = st.decayed * math.exp(-max(0.0, t - st.at) / self.tau) + 1.0
                st.at = max(st.at, t)
            if took_part:
                st.reached.add(user_id)

    def rate(self, ad_id: str, now: dt.datetime) -> float:
        """People newly eligible per second, recently."""
        t = day_fraction(now) * 86_400.0
        with self._lock:
            st = self._state(ad_id, now)
            decayed = st.decayed * math.exp(-max(0.0, t - st.at) / self.tau)
        window = self.tau * -math.expm1(-max(t, 1.0) / self.tau)  # the window so far today
        return decayed / window

    def forecast(self, ad_id: str, spent: float, now: dt.datetime) -> float | None:
        """The spend ``ad_id`` can still deliver today; None until it reached ``min_people``
        people (too few to tell)."""
        with self._lock:
            reached = len(self._state(ad_id, now).reached)
        if reached < max(1, self.min_people):
            return None
        left = 86_400.0 * (1.0 - day_fraction(now))
        return self.rate(ad_id, now) * (spent / reached) * left


def targeted(ad: Ad, context: Context, person: Person) -> bool:
    """The ad's targeting holds: the video's kind, genres, language; the person's age and
    locale. A person whose age or locale is unknown does not match an ad that targets it."""
    if ad.kinds and context.kind not in ad.kinds:
        return False
    if ad.genres and not ad.genres & context.genres:
        return False
    if ad.languages and context.language not in ad.languages:
        return False
    if ad.min_age is not None or ad.max_age is not None:
        if person.age is None:
            return False
        if ad.min_age is not None and person.age < ad.min_age:
            return False
        if ad.max_age is not None and person.age > ad.max_age:
            return False
    return not ad.locales or person.locale in ad.locales


def brand_safe(ad: Ad, context: Context) -> bool:
    """None of the video's genres or tags is one the ad excludes."""
    return not ad.exclude & (context.genres | context.tags)


def exclusion(
    ad: Ad,
    context: Context,
    person: Person,
    now: dt.datetime,
    shown: int,
    spent: float,
    pacing: Pacing | None,
    demand: Demand | None = None,
) -> tuple[str | None, float]:
    """Why ``ad`` may not run for this request (a :data:`REASONS` entry; None: it may), and
    the pacing rate it took part with. ``demand``: the ad's demand so far, for demand-aware
    pacing; this request is recorded to it when the ad reaches the pacing step."""
    day = utc_day(now)
    if (ad.start is not None and day < ad.start) or (ad.end is not None and day > ad.end):
        return "flight", 0.0
    if not targeted(ad, context, person):
        return "targeting", 0.0
    if not brand_safe(ad, context):
        return "brand_safety", 0.0
    if ad.item_id is not None and (ad.item_id in person.seen or ad.item_id == context.item_id):
        return "already_watched", 0.0
    if shown >= ad.frequency_cap:
        return "frequency_cap", 0.0
    if spent + ad.bid > ad.daily_budget + 1e-9:  # one more click would overspend
        return "budget", 0.0
    if pacing is None:
        return None, 1.0
    forecast = demand.forecast(ad.ad_id, spent, now) if demand is not None else None
    rate = pacing.rate(ad, spent, now, forecast)
    took_part = pacing.draw(ad.ad_id, person.user_id, now) < rate
    if demand is not None:
        demand.observe(ad.ad_id, person.user_id, now, took_part)
    return (None if took_part else "paced"), rate
