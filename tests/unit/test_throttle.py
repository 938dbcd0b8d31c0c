"""Token buckets on a hand-driven clock: the burst, the refill, the wait to the next token, and
separate clients."""

from __future__ import annotations

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
