"""Compiled rules applied to one scored candidate list, and the reason each moved item gets.

Order: filters and availability windows drop candidates; boosts and freshness add to the
scores, which are first z-scored over the candidates left (so a weight is in standard
deviations of the model's scores, whatever the model's scale); the list is put in that order
(or by ``order``, the diversity re-rank, on those scores); then pins take their positions and
the caps fill the other positions greedily: each next item in order that keeps every cap
(at most ``max`` per value among the first ``top``, the pinned items counted first), the
items passed over coming back below ``top``. So a cap holds in every list (unless two pins
break it themselves), at the price of a shorter list where the candidates run out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from avrec.models.scaling import zscore_rows
from avrec.rerank.rules.compiled import CapRule, CompiledRules

#: an ordering of candidates: (positions into the candidate list, their scores) -> the same
#: positions, best first
Order = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Ruled:
    """A list after the rules: catalog item indices, each one's position in the candidate
    list (-1: a pinned item from outside it) and the rule that moved it (None: none)."""

    items: np.ndarray
    pool: np.ndarray
    reasons: list[str | None]


def apply_rules(
    rules: CompiledRules,
    candidates: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    exclude: Iterable[int] = (),
    now: dt.datetime | None = None,
    order: Order | None = None,
) -> Ruled:
    """The ``k`` items to show of ``candidates`` (catalog item indices, ``scores`` aligned;
    non-finite scores are never shown). ``exclude``: items the person has seen or rejected,
    which a pin does not bring back."""
    cand = np.asarray(candidates, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    allowed = rules.allowed(now)
    keep = np.isfinite(s) if allowed is None else np.isfinite(s) & allowed[cand]
    pos = np.flatnonzero(keep)
    base = pos[np.argsort(-s[pos], kind="stable")]
    boost = rules.boost(cand[pos])
    adjusted = s.copy()
    if boost is not None and len(pos):
        adjusted[pos] = zscore_rows(s[pos]) + boost
    ranked = (
        np.asarray(order(pos, adjusted[pos]), dtype=np.int64)
        if order is not None
        else pos[np.argsort(-adjusted[pos], kind="stable")]
    )
    pins = _eligible_pins(rules, set(int(i) for i in exclude), allowed)
    pinned_items = {p[0] for p in pins.values()}
    queue = [int(p) for p in ranked if int(cand[p]) not in pinned_items]
    first = {int(c): n for n, c in reversed(list(enumerate(cand)))}
    counts: list[dict[int, int]] = [defaultdict(int) for _ in rules.caps]
    for cap, count in zip(rules.caps, counts, strict=True):  # pinned items count first
        for slot, (item, _) in pins.items():
            if slot < min(cap.top, k):
                for g in cap.groups[item]:
                    count[g] += 1
    picked: list[tuple[int, int, str | None]] = []  # item, pool position, pin rule
    passed_over: dict[int, set[str]] = {}  # slot -> caps that passed an item over before it
    skipped: set[str] = set()
    while len(picked) < k:
        slot = len(picked)
        if slot in pins or (not queue and pins):
            at = slot if slot in pins else min(pins)
            item, name = pins.pop(at)
            picked.append((item, first.get(item, -1), name))
        else:
            fits = (n for n, p in enumerate(queue) if _fits(rules.caps, counts, cand[p], slot))
            n = next(fits, None)
            if n is None:
                break
            skipped |= _blocking(rules.caps, counts, [int(cand[p]) for p in queue[:n]], slot)
            p = queue.pop(n)
            picked.append((int(cand[p]), p, None))
        passed_over[slot] = set(skipped)
        if picked[-1][2] is not None:  # counted above
            continue
        for cap, count in zip(rules.caps, counts, strict=True):
            if slot < cap.top:
                for g in cap.groups[picked[-1][0]]:
                    count[g] += 1
    items = np.array([p[0] for p in picked], dtype=np.int64)
    reasons = _reasons(rules, picked, base, ranked, passed_over)
    return Ruled(items, np.array([p[1] for p in picked], dtype=np.int64), reasons)


def _eligible_pins(
    rules: CompiledRules, exclude: set[int], allowed: np.ndarray | None
) -> dict[int, tuple[int, str]]:
    """Slot (0-based) -> (item, rule name) of the pins whose item may be shown."""
    return {
        p.position - 1: (p.item, p.name)
        for p in rules.pins
        if p.item not in exclude and (allowed is None or allowed[p.item])
    }


def _fits(caps: tuple[CapRule, ...], counts: list[dict[int, int]], item: int, slot: int) -> bool:
    return all(
        slot >= cap.top or all(count[g] < cap.max for g in cap.groups[item])
        for cap, count in zip(caps, counts, strict=True)
    )


def _blocking(
    caps: tuple[CapRule, ...], counts: list[dict[int, int]], passed: list[int], slot: int
) -> set[str]:
    """The caps that passed over some of ``passed`` (item indices) at ``slot``."""
    return {
        cap.name
        for cap, count in zip(caps, counts, strict=True)
        if slot < cap.top and any(any(count[g] >= cap.max for g in cap.groups[i]) for i in passed)
    }


def _reasons(
    rules: CompiledRules,
    picked: list[tuple[int, int, str | None]],
    base: np.ndarray,
    ranked: np.ndarray,
    passed_over: dict[int, set[str]],
) -> list[str | None]:
    base_rank = {int(p): n for n, p in enumerate(base)}
    ranked_rank = {int(p): n for n, p in enumerate(ranked)}
    caps = {c.name: c for c in rules.caps}
    out: list[str | None] = []
    for slot, (item, pool, pin) in enumerate(picked):
        if pin is not None:
            out.append(f"pinned to position {slot + 1} by rule {pin!r}")
            continue
        said = []
        up = [w.name for w in rules.weights if w.values[item] > 0]
        down = [w.name for w in rules.weights if w.values[item] < 0]
        if up and slot < base_rank[pool]:
            said.append(f"boosted by rule {_names(up)}")
        elif down and slot > base_rank[pool]:
            said.append(f"lowered by rule {_names(down)}")
        if slot < ranked_rank[pool] and passed_over.get(slot):
            names = sorted(passed_over[slot])
            what = ", ".join(
                f"at most {caps[n].max} per {caps[n].field} in the top {caps[n].top}" for n in names
            )
            said.append(f"moved up by rule {_names(names)} ({what})")
        out.append("; ".join(said) or None)
    return out


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def with_reason(explanation: str | None, reason: str | None) -> str | None:
    """An item's explanation with the rule that moved it appended."""
    if not reason:
        return explanation
    return f"{explanation}; {reason}" if explanation else reason[0].upper() + reason[1:]


def cap_violations(rules: CompiledRules, items: np.ndarray) -> list[str]:
    """The caps ``items`` (one list, best first) breaks, one line each (empty: none)."""
    out = []
    for cap in rules.caps:
        count: dict[int, int] = defaultdict(int)
        for item in np.asarray(items)[: cap.top]:
            for g in cap.groups[int(item)]:
                count[g] += 1
        over = [g for g, c in count.items() if c > cap.max]
        if over:
            out.append(f"rule {cap.name!r}: {len(over)} value(s) above {cap.max}")
    return out
