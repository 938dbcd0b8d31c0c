"""Demand-aware pacing: the demand forecast from the requests seen so far, and the pacer's
decisions (ahead with ample demand: throttled; ahead with demand drying up: not; behind: not)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from avrec.ads.catalog import Ad
from avrec.ads.eligibility import (
    Context,
    Demand,
    Forecast,
    MemoryLedger,
    Pacing,
    Person,
    exclusion,
)

DAY = dt.datetime(2026, 12, 7)
NOON = DAY + dt.timedelta(hours=12)
DRAMA = Context("f1", "movie", frozenset({"drama"}))
TAU_H = 3.0 / math.log(2.0)  # hours: a half-life of 3 hours


def ad(budget: float = 100.0, bid: float = 1.0) -> Ad:
    return Ad("a", "Acme", "t", bid=bid, daily_budget=budget, frequency_cap=2)


def feed(demand: Demand, start_h: float, end_h: float, people: int, prefix: str = "u") -> None:
    """``people`` distinct people newly eligible, evenly from ``start_h`` to ``end_h``, each
    taken part for."""
    step = (end_h - start_h) * 3600 / people
    for n in range(people):
        now = DAY + dt.timedelta(hours=start_h, seconds=n * step)
        demand.observe("a", f"{prefix}{n}", now, took_part=True)


def test_rate_counts_new_people_not_repeat_requests():
    demand = Demand(half_life=3600.0, min_people=1)
    feed(demand, 0.0, 12.0, 4320)  # one new person every 10 s
    assert demand.rate("a", NOON) == pytest.approx(0.1, rel=0.05)
    for n in range(1000):  # the same people asking again: not new demand
        demand.observe("a", f"u{n}", NOON, took_part=True)
    assert demand.rate("a", NOON) == pytest.approx(0.1, rel=0.05)
    # nobody new for 4 half-lives: the rate falls below a 16th (and is read as falling)
    later = NOON + dt.timedelta(hours=4)
    assert demand.rate("a", later) < 0.1 / 16
    assert demand.rates("a", later)[1] > 0.0


def test_forecast_is_rate_times_spend_per_person_times_time_left():
    demand = Demand(half_life=3600.0, min_people=20)
    feed(demand, 0.0, 12.0, 4320)
    # a steady rate: 70 spent on 4320 people reached; 12 h left at 0.1 new people a second
    forecast = demand.forecast("a", 70.0, NOON)
    assert forecast is not None
    assert forecast.spend == pytest.approx(0.1 * 43_200 * 70 / 4320, rel=0.05)
    assert forecast.share_gone == pytest.approx(0.5, abs=0.02)
    few = Demand(min_people=20)
    feed(few, 0.0, 12.0, 19)
    assert few.forecast("a", 10.0, NOON) is None  # too few people to tell
    # a new UTC day starts from nothing; a late request from the day before changes nothing
    assert demand.forecast("a", 0.0, NOON + dt.timedelta(days=1)) is None
    demand.observe("a", "late", NOON, took_part=True)
    assert demand.people("a", NOON + dt.timedelta(days=1)) == (0, 0)


def test_ahead_with_ample_demand_is_throttled():
    pacing = Pacing(seed=1, margin=0.05, lead=0.0, demand_margin=0.25)
    demand = Demand(half_life=3600.0, min_people=20)
    feed(demand, 0.0, 12.0, 4320)  # steady demand: half of the day's is still to come
    a = ad()
    forecast = demand.forecast("a", 60.0, NOON)
    assert forecast is not None and forecast.spend > 40.0 * 1.25  # outruns what is left
    assert pacing.rate(a, 60.0, NOON, forecast) == 0.0  # 10% ahead, margin 5%: held back
    assert pacing.rate(a, 52.5, NOON, forecast) == pytest.approx(0.5, abs=0.1)
    assert pacing.rate(a, 60.0, NOON, Forecast(51.0, 0.0)) == 0.0


def test_pacing_switched_off_never_throttles():
    a = ad()
    off = Pacing(seed=1, margin=0.05, lead=0.0, enabled=False)
    assert Pacing(seed=1, margin=0.05, lead=0.0).rate(a, 60.0, NOON) == 0.0  # 10% ahead
    assert off.rate(a, 60.0, NOON) == 1.0
    assert off.rate(a, 99.0, DAY + dt.timedelta(minutes=1), Forecast(500.0, 0.0)) == 1.0


def test_ahead_with_demand_drying_up_is_not_throttled():
    pacing = Pacing(seed=1, margin=0.05, lead=0.0, demand_margin=0.25)
    demand = Demand(half_life=3600.0, min_people=20)
    feed(demand, 0.0, 6.0, 2000)  # a morning rush, then nobody new
    a = ad()
    forecast = demand.forecast("a", 60.0, NOON)
    assert forecast is not None and forecast.spend < 40.0 and forecast.share_gone > 0.95
    assert pacing.rate(a, 60.0, NOON, forecast) == 1.0
    # on the clock alone the same spend is held back
    assert pacing.rate(a, 60.0, NOON) == 0.0
    # the drying rule alone: little left to come frees it, though its share is the clock's
    assert pacing.rate(a, 60.0, NOON, Forecast(50.0, 0.0)) == 1.0
    # a schedule that follows demand: 70% of the day's people came by noon
    assert pacing.rate(a, 60.0, NOON, Forecast(1e6, 0.7)) == 1.0


def test_behind_is_not_throttled_whatever_the_demand():
    pacing = Pacing(seed=1, margin=0.05, lead=0.0)
    a = ad()
    for forecast in (None, Forecast(0.0, 0.0), Forecast(1e6, 0.0), Forecast(1e6, 1.0)):
        assert pacing.rate(a, 40.0, NOON, forecast) == 1.0


def test_exclusion_records_demand_and_lets_a_drying_campaign_spend():
    """One ad through :func:`exclusion` and a ledger, new people arriving ever more rarely
    (their rate halves every 3 hours; one in five clicks its first impression): paced on the
    schedule alone it ends short of its budget; demand-aware, it reaches it, and never passes
    it."""
    a = ad(budget=60.0, bid=1.0)
    people = 600
    span = 1.0 - math.exp(-24 / TAU_H)
    times = [
        DAY + dt.timedelta(hours=-TAU_H * math.log(1.0 - span * n / people)) for n in range(people)
    ]

    def day(pacing: Pacing, demand: Demand | None) -> float:
        ledger = MemoryLedger()
        for n, now in enumerate(times):
            user = f"u{n}"
            why, _ = exclusion(
                a,
                DRAMA,
                Person(user),
                now,
                ledger.shown(user, now.date()).get("a", 0),
                ledger.spent(now.date()).get("a", 0.0),
                pacing,
                demand,
            )
            if why is None and n % 5 == 0:
                ledger.record("impression", user, a, now.date())
                ledger.record("click", user, a, now.date())
        return ledger.spent(DAY.date()).get("a", 0.0)

    even = day(Pacing(seed=2, demand_aware=False), None)
    aware = [day(Pacing(seed=2), Demand(half_life=3600.0, min_people=20)) for _ in range(2)]
    assert aware[0] == aware[1]  # the same requests in the same order: the same day
    assert even < 0.95 * 60.0 <= aware[0] <= 60.0
