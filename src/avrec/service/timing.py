"""Server-side latency samples: the last ``size`` durations per name, for exact percentiles
(Prometheus histograms only give bucket bounds). Appending is O(1) and thread-safe enough
(``deque.append`` is atomic in CPython)."""

from __future__ import annotations

from collections import deque

import numpy as np


class Latencies:
    def __init__(self, size: int = 200_000):
        self.size = size
        self._samples: dict[str, deque] = {}

    def add(self, name: str, seconds: float) -> None:
        samples = self._samples.get(name)
        if samples is None:
            samples = self._samples.setdefault(name, deque(maxlen=self.size))
        samples.append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, samples in list(self._samples.items()):
            ms = np.asarray(list(samples), dtype=np.float64) * 1000.0
            if len(ms):
                p50, p90, p99 = np.percentile(ms, [50, 90, 99])
                out[name] = {
                    "count": len(ms),
                    "p50_ms": round(float(p50), 3),
                    "p90_ms": round(float(p90), 3),
                    "p99_ms": round(float(p99), 3),
                    "max_ms": round(float(ms.max()), 3),
                }
        return out

    def clear(self) -> None:
        self._samples.clear()
