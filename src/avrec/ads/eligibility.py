"""Which ads may run for a request: flight dates, targeting, brand safety, frequency caps,
budgets and pacing. Every rule is a plain function of the ad, the request and what was already
shown and spent today (a :class:`Ledger`), so the service, the CLI and the simulation obey the
same rules.

Days are UTC days. A frequency cap counts the person's impressions of the ad today; a budget
counts the ad's spend today (clicks × bid). Pacing spreads a budget over the day: an ad whose
share of its budget spent runs ahead of its schedule (:class:`Pacing`) takes part in a request
only with a probability that falls to 0 when it is ``margin`` ahead; the draw is a hash of the
seed, the ad, the person and the time, so a run is repeatable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
    schedule before the ad stops taking part (at least three bids' worth)."""

    seed: int = 0
    margin: float = 0.05
    lead: float = 0.15

    def rate(self, ad: Ad, spent: float, now: dt.datetime) -> float:
        """The probability that ``ad`` takes part in a request at ``now``."""
        margin = max(self.margin, 3 * ad.bid / ad.daily_budget)
        schedule = min(1.0, (1.0 + self.lead) * day_fraction(now))
        ahead = spent / ad.daily_budget - schedule
        return float(min(1.0, max(0.0, 1.0 - ahead / margin)))

    def draw(self, ad_id: str, user_id: str | None, now: dt.datetime) -> float:
        """A repeatable uniform number in [0, 1) for this ad, person and moment."""
        key = f"{self.seed}\x1f{ad_id}\x1f{user_id}\x1f{now.isoformat()}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


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
) -> tuple[str | None, float]:
    """Why ``ad`` may not run for this request (a :data:`REASONS` entry; None: it may), and
    the pacing rate it took part with."""
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
    rate = pacing.rate(ad, spent, now)
    if pacing.draw(ad.ad_id, person.user_id, now) >= rate:
        return "paced", rate
    return None, rate
