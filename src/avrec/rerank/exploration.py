"""Serving policies over a scored list, with the probability of what they showed.

A policy takes a model's ranked pool (ids and scores, best first) and fills ``k`` places one
after another. ``greedy`` shows the pool's top ``k`` (each with probability 1); ``epsilon``
takes, at each place, the best remaining item with probability ``1 - rate`` and a uniformly
drawn remaining one with probability ``rate``; ``softmax`` draws each place from the remaining
items with probability proportional to ``exp(z(score) / rate)`` (Plackett-Luce; ``rate`` is
the temperature, z the row z-score). The propensity logged with an item is the probability
that the policy put that item at that place given the items above it, which is what
position-wise inverse propensity weighting (``evaluation.ope``) needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avrec.errors import AvrecError
from avrec.models.scaling import zscore_rows

POLICIES = ("greedy", "epsilon", "softmax")


class PolicyError(AvrecError, ValueError):
    """A serving policy that cannot be used as configured."""


@dataclass(frozen=True)
class Policy:
    """``kind``: greedy | epsilon | softmax; ``rate``: epsilon's exploration probability or
    softmax's temperature; ``pool``: how many of the model's best items may be shown."""

    kind: str = "greedy"
    rate: float = 0.0
    pool: int = 50

    def __post_init__(self) -> None:
        if self.kind not in POLICIES:
            raise PolicyError(f"unknown policy {self.kind!r}; choose one of {', '.join(POLICIES)}")
        if self.kind == "epsilon" and not 0.0 <= self.rate <= 1.0:
            raise PolicyError(f"epsilon's rate must be in [0, 1], got {self.rate}")
        if self.kind == "softmax" and not self.rate > 0.0:
            raise PolicyError(f"softmax's rate (a temperature) must be > 0, got {self.rate}")
        if self.pool < 1:
            raise PolicyError(f"pool must be at least 1, got {self.pool}")

    @property
    def explores(self) -> bool:
        return self.kind == "softmax" or (self.kind == "epsilon" and self.rate > 0)


def serve(
    items: Sequence[str],
    scores: np.ndarray,
    k: int,
    policy: Policy,
    rng: np.random.Generator,
) -> tuple[list[int], np.ndarray]:
    """Indices into ``items`` of the ``k`` (or fewer) items shown, in order, and the
    propensity of each at its place. ``items``/``scores`` are the model's list, best first."""
    n = min(len(items), policy.pool if policy.explores else len(items))
    k = min(k, n)
    if not policy.explores:
        return list(range(k)), np.ones(k)
    s = np.asarray(scores[:n], dtype=np.float64)
    finite = np.isfinite(s)
    s = np.where(finite, s, s[finite].min() if finite.any() else 0.0)  # non-finite: the worst
    z = zscore_rows(s)
    weights = np.exp((z - z.max()) / policy.rate)
    remaining = list(range(n))
    shown: list[int] = []
    props = np.empty(k)
    for place in range(k):
        if policy.kind == "epsilon":
            m = len(remaining)
            # remaining stays in the model's order, so its first entry is the best one left
            pick = int(rng.integers(m)) if rng.random() < policy.rate else 0
            chosen = remaining[pick]
            props[place] = (1 - policy.rate) * (pick == 0) + policy.rate / m
        else:
            w = weights[remaining]
            p = w / w.sum()
            pick = int(rng.choice(len(remaining), p=p))
            chosen = remaining[pick]
            props[place] = p[pick]
        shown.append(chosen)
        remaining.pop(pick)
    return shown, props
