"""Token buckets on a hand-driven clock: the burst, the refill, the wait to the next token,
separate clients; the limit settings from the environment."""

from __future__ import annotations

import pytest

from avrec.service.settings import ServiceSettings
from avrec.service.throttle import TokenBuckets


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == 0.5  # one token back after 1/rate seconds
    assert buckets.take("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == 0.5
    clock.now += 100
    assert [buckets.take("a") for _ in range(4)][-1] == 0.5  # refilled up to the burst only


def test_limits_come_from_the_environment(monkeypatch, tmp_path):
    assert ServiceSettings(model_dir=tmp_path).max_in_flight == 256
    monkeypatch.setenv("AVREC_RATE_PER_S", "5")
    monkeypatch.setenv("AVREC_MAX_IN_FLIGHT", "3")
    settings = ServiceSettings(model_dir=tmp_path)
    assert (settings.rate_per_s, settings.max_in_flight, settings.rate_burst) == (5.0, 3, 2000)
    assert ServiceSettings(model_dir=tmp_path, max_in_flight=7).max_in_flight == 7
    monkeypatch.setenv("AVREC_VISITOR_BURST", "lots")
    with pytest.raises(ValueError, match="AVREC_VISITOR_BURST must be a number"):
        ServiceSettings(model_dir=tmp_path)
