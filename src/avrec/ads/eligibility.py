"""Which ads may run for a request: flight dates, targeting, brand safety, frequency caps,
budgets and pacing. Every rule is a plain function of the ad, the request and what was already
shown and spent today (a :class:`Ledger`), so the service, the CLI and the simulation obey the
same rules.

Days are UTC days. A frequency cap counts the person's impressions of the ad today; a budget
counts the ad's spend today (clicks × bid). Pacing spreads a budget over the day: an ad whose
share of its budget spent runs ahead of its schedule (:class:`Pacing`) takes part in a request
only with a probability that falls to 0 when it is ``margin`` ahead; the draw is a hash of the
seed, the ad, the person and the time, so a run is repeatable. Pacing is demand-aware
(:class:`Demand`): the schedule follows the share of the day's forecast demand gone when that
runs ahead of the clock, and an ad ahead of it is throttled only while the forecast of what it
can still spend today (people newly eligible to come, from their recent rate and its trend, ×
its spend per person reached) exceeds its remaining budget with a margin; when demand dries up
it runs free, so a campaign whose demand comes early still spends its budget. The forecast
reads only the requests seen so far.
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

    Demand-aware: given a :class:`Forecast` of the ad's demand (:class:`Demand`), the share of
    the day in the schedule is the larger of the clock's and the share of the day's eligible
    people that have come (demand that comes early is spent early), and an ad ahead of it is
    throttled only while the forecast spend still to come exceeds the remaining budget by more
    than ``demand_margin`` (a share of it); otherwise it takes part in every request.
    ``half_life`` (seconds) and ``min_people`` configure the :class:`Demand` a selector keeps
    for it; ``demand_aware=False`` paces on the clock alone; ``enabled=False``: no pacing
    (every eligible ad takes part until its budget is spent)."""

    seed: int = 0
    margin: float = 0.05
    lead: float = 0.15
    demand_margin: float = 0.25
    half_life: float = 3600.0
    min_people: int = 20
    demand_aware: bool = True
    enabled: bool = True

    def rate(
        self, ad: Ad, spent: float, now: dt.datetime, forecast: Forecast | None = None
    ) -> float:
        """The probability that ``ad`` takes part in a request at ``now``; ``forecast``: its
        demand today as forecast so far (None: unknown, pace on the clock alone)."""
        if not self.enabled:
            return 1.0
        margin = max(self.margin, 3 * ad.bid / ad.daily_budget)
        gone = day_fraction(now)
        if forecast is not None:
            gone = max(gone, forecast.share_gone)  # demand that comes early: spend early
        schedule = min(1.0, (1.0 + self.lead) * gone)
        ahead = spent / ad.daily_budget - schedule
        if ahead <= 0.0:
            return 1.0
        if forecast is not None and forecast.spend <= (ad.daily_budget - spent) * (
            1.0 + self.demand_margin
        ):
            return 1.0  # demand is drying up: what is left will not outrun the budget
        return float(min(1.0, max(0.0, 1.0 - ahead / margin)))

    def draw(self, ad_id: str, user_id: str | None, now: dt.datetime) -> float:
        """A repeatable uniform number in [0, 1) for this ad, person and moment."""
        key = f"{self.seed}\x1f{ad_id}\x1f{user_id}\x1f{now.isoformat()}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


@dataclass(frozen=True)
class Forecast:
    """An ad's demand today as forecast from the requests so far: the spend it can still
    deliver, and the share of the day's people eligible for it that have come already."""

    spend: float
    share_gone: float


@dataclass
class _AdDemand:
    # exponentially weighted counts of people newly eligible, half-lives h and 2h
    fast: float = 0.0
    slow: float = 0.0
    at: float = 0.0  # seconds of the day at the last update
    eligible: set[str | None] = field(default_factory=set)  # people eligible today
    reached: set[str | None] = field(default_factory=set)  # people it took part for


class Demand:
    """Each ad's demand today, as seen so far, counted in people: caps and "already watched"
    bound what an ad can spend on a person, so a person who asks many times is one
    opportunity, not many.

    Kept per ad: two exponentially weighted rates of people newly eligible for it (all rules
    but pacing held), with half-lives ``half_life`` and twice that (corrected for the start of
    the day), and the people it took part in a request for. Their ratio gives the trend: were
    the rate ``r·exp(-k·t)``, a window of time constant τ would read ``r / (1 - k·τ)``, so the
    two readings give ``k`` and ``r`` (a rate that is not falling is taken as flat). The
    forecast of the spend it can still deliver today is the new people to come,
    ``r·(1 - exp(-k·left))/k``, × its spend per person reached so far; the share of the
    day's demand gone is the people seen / (seen + to come).

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
        if self._day is not None and day < self._day:
            return _AdDemand()  # a request from a day already over: counted nowhere
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
                gap = max(0.0, t - st.at)
                st.fast = st.fast * math.exp(-gap / self.tau) + 1.0
                st.slow = st.slow * math.exp(-gap / (2 * self.tau)) + 1.0
                st.at = max(st.at, t)
            if took_part:
                st.reached.add(user_id)

    def people(self, ad_id: str, now: dt.datetime) -> tuple[int, int]:
        """How many people ``ad_id`` was eligible for, and took part for, on ``now``'s day."""
        with self._lock:
            st = self._state(ad_id, now)
            return len(st.eligible), len(st.reached)

    def rates(self, ad_id: str, now: dt.datetime) -> tuple[float, float]:
        """People newly eligible per second now, and how fast that rate falls (per second;
        0: not falling)."""
        t = max(day_fraction(now) * 86_400.0, 1.0)
        with self._lock:
            st = self._state(ad_id, now)
            gap = max(0.0, t - st.at)
            fast, slow = (
                st.fast * math.exp(-gap / self.tau),
                st.slow * math.exp(-gap / (2 * self.tau)),
            )
        # each reading over the window so far today (so the day's first hours are not low)
        e1 = fast / (self.tau * -math.expm1(-t / self.tau))
        e2 = slow / (2 * self.tau * -math.expm1(-t / (2 * self.tau)))
        if e1 <= 0.0 or e2 <= 0.0 or e1 >= e2:
            return e1, 0.0
        q = e1 / e2
        k = (1.0 - q) / (2 * self.tau - q * self.tau)
        return e1 * (1.0 - k * self.tau), k

    def rate(self, ad_id: str, now: dt.datetime) -> float:
        """People newly eligible per second, now."""
        return self.rates(ad_id, now)[0]

    def forecast(self, ad_id: str, spent: float, now: dt.datetime) -> Forecast | None:
        """``ad_id``'s demand for the rest of today; None until it reached ``min_people``
        people (too few to tell)."""
        with self._lock:
            st = self._state(ad_id, now)
            seen, reached = len(st.eligible), len(st.reached)
        if reached < max(1, self.min_people):
            return None
        left = 86_400.0 * (1.0 - day_fraction(now))
        r, k = self.rates(ad_id, now)
        to_come = r * left if k * left < 1e-9 else r * -math.expm1(-k * left) / k
        return Forecast(to_come * spent / reached, seen / (seen + to_come))


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
