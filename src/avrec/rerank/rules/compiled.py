"""A rules file compiled against a catalog: masks, weight vectors and value groups over the
catalog's rows (the model's item order), ready to apply to any candidate list.

Attributes a rule can name: ``item`` (ids), ``genre`` (the ``genres`` column), ``tag`` (the
plain ``tags``), any catalog column (``kind``, ``language``, ``year``, ...; ``|`` separates
several values) and any prefix of the catalog's tags (``director`` for ``director:A, B``, also
``cast``, ``artist``, ``series``). Text compares without case; numbers as numbers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from avrec.data.dataset import split_multi
from avrec.rerank.rules.schema import Document, Match, Range, RulesError, RuleSet

ITEM_NAMES = ("item", "items", "item_id")
#: attribute names for the catalog's columns
ALIASES = {"genre": "genres", "tag": "tags"}


class Attributes:
    """Each item's values of an attribute, by name (read once per name)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame.reset_index(drop=True)
        self._values: dict[str, list[list]] = {}
        self._people: dict[str, list[list[str]]] | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in self.frame["item_id"]]

    def names(self) -> list[str]:
        """The attribute names this catalog has (for messages)."""
        cols = [c for c in self.frame.columns if self.frame[c].notna().any()]
        named = ["item", *(k for k, v in ALIASES.items() if v in cols)]
        return [
            *named,
            *(c for c in cols if c not in ("item_id", *ALIASES.values())),
            *sorted(self.people()),
        ]

    def people(self) -> dict[str, list[list[str]]]:
        """Prefix -> each item's names under it (``director:A, B`` -> director: [a, b])."""
        if self._people is None:
            tags = self.frame["tags"] if "tags" in self.frame else [None] * len(self.frame)
            found: dict[str, list[list[str]]] = {}
            for row, value in enumerate(tags):
                for part in split_multi(value):
                    if ":" not in part:
                        continue
                    prefix, rest = part.split(":", 1)
                    names = [x.strip().casefold() for x in rest.split(",") if x.strip()]
                    key = prefix.strip().casefold()
                    if key not in found:
                        found[key] = [[] for _ in range(len(self.frame))]
                    found[key][row] += names
            self._people = found
        return self._people

    def values(self, name: str) -> list[list] | None:
        """Each item's values (casefolded text or floats); None: no such attribute."""
        key = name.strip().casefold()
        if key not in self._values:
            found = self._read(key)
            if found is None:
                return None
            self._values[key] = found
        return self._values[key]

    def _read(self, key: str) -> list[list] | None:
        if key in ITEM_NAMES:
            return [[i.casefold()] for i in self.ids]
        column = ALIASES.get(key, key)
        if column == "tags" and "tags" in self.frame:
            return [
                [p.casefold() for p in split_multi(v) if ":" not in p] for v in self.frame["tags"]
            ]
        if column in self.frame.columns:
            series = self.frame[column]
            if pd.api.types.is_numeric_dtype(series):
                return [[] if pd.isna(v) else [float(v)] for v in series]
            return [[p.casefold() for p in split_multi(_text(v))] for v in series]
        return self.people().get(key)

    def numbers(self, name: str) -> np.ndarray | None:
        """Each item's value as a number (NaN where missing; dates as fractional years); None
        when the attribute is not numeric."""
        key = ALIASES.get(name.strip().casefold(), name.strip().casefold())
        if key not in self.frame.columns:
            return None
        series = self.frame[key]
        if pd.api.types.is_numeric_dtype(series):
            return series.to_numpy(np.float64)
        if pd.api.types.is_datetime64_any_dtype(series):
            when = series
        else:
            text = series.dropna().astype(str)
            if text.empty:
                return None
            when = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
            if when.notna().sum() < len(text):  # not every value is a date: not numeric
                return None
        when = pd.to_datetime(when, utc=True)
        days = (when - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86_400
        return (1970.0 + days / 365.25).to_numpy(np.float64)


def _text(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


@dataclass(frozen=True)
class Window:
    name: str
    items: np.ndarray  #: bool [n_items]: the items the window is about
    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True)
class Weight:
    name: str
    values: np.ndarray  #: float [n_items]: what the rule adds to each item's score


@dataclass(frozen=True)
class CapRule:
    name: str
    field: str
    max: int
    top: int
    groups: list[tuple[int, ...]]  #: each item's value codes


@dataclass(frozen=True)
class PinRule:
    name: str
    item: int
    position: int


@dataclass(frozen=True)
class CompiledRules:
    """A rule set over a catalog of ``n_items`` rows (see :func:`compile_rules`)."""

    rules: RuleSet
    source: str
    n_items: int
    exclude: np.ndarray | None  #: bool [n_items]: dropped by the filters (None: none)
    windows: tuple[Window, ...]
    weights: tuple[Weight, ...]
    caps: tuple[CapRule, ...]
    pins: tuple[PinRule, ...]

    @property
    def empty(self) -> bool:
        return not self.rules.rules

    @property
    def depth(self) -> int:
        """The candidate pool the rules ask for (0: any): twice every cap's ``top`` (the items
        it passes over come back below it) and every pin's position."""
        return max([2 * c.top for c in self.caps] + [p.position for p in self.pins], default=0)

    def allowed(self, now: dt.datetime | None = None) -> np.ndarray | None:
        """bool [n_items]: the items the filters and availability windows leave (at ``now``:
        the file's ``now``, else the given time, else the clock); None: every item."""
        if self.exclude is None and not self.windows:
            return None
        when = self.rules.now or now or dt.datetime.now(dt.UTC)
        out = np.ones(self.n_items, dtype=bool) if self.exclude is None else ~self.exclude
        for w in self.windows:
            closed = (w.start is not None and when < w.start) or (
                w.end is not None and when >= w.end
            )
            if closed:
                out &= ~w.items
        return out

    def boost(self, items: np.ndarray) -> np.ndarray | None:
        """What the boosts and freshness add to ``items`` (None: no such rule)."""
        if not self.weights:
            return None
        return np.sum([w.values[items] for w in self.weights], axis=0)


def compile_rules(doc: Document, frame: pd.DataFrame) -> CompiledRules:
    """``doc``'s rules over ``frame`` (the catalog, rows in the model's item order); an
    attribute or item the catalog lacks is a :class:`RulesError` naming the rule's line."""
    attrs = Attributes(frame)
    n = len(attrs)
    exclude = np.zeros(n, dtype=bool)
    windows, weights, caps, pins = [], [], [], []
    index = {i: pos for pos, i in enumerate(attrs.ids)}
    for r, rule in enumerate(doc.rules.rules):

        def fail(what: str, r: int = r, name: str = rule.name) -> RulesError:
            line = doc.rule_line(r) or 1
            return RulesError(f"{doc.source}:{line}: rule {name!r}: {what}", ("rules", r), line)

        body = rule.body
        if rule.filter is not None:
            f = rule.filter
            if f.exclude is not None:
                exclude |= _matches(attrs, f.exclude, fail)
            elif f.include is not None:
                exclude |= ~_matches(attrs, f.include, fail)
        elif rule.availability is not None:
            a = rule.availability
            windows.append(Window(rule.name, _matches(attrs, a.match, fail), a.start, a.end))
        elif rule.boost is not None:
            hit = _matches(attrs, rule.boost.match, fail)
            weights.append(Weight(rule.name, np.where(hit, rule.boost.weight, 0.0)))
        elif rule.freshness is not None:
            weights.append(Weight(rule.name, _freshness(attrs, rule.freshness, fail)))
        elif rule.cap is not None:
            c = rule.cap
            groups = _groups(attrs, c.field, fail)
            if c.values == "first":
                groups = [row[:1] for row in groups]
            caps.append(CapRule(rule.name, c.field, c.max, c.top, groups))
        elif rule.pin is not None:
            pos = index.get(rule.pin.item)
            if pos is None:
                raise fail(f"pin: item {rule.pin.item!r} is not in the catalog")
            pins.append(PinRule(rule.name, pos, rule.pin.position))
        else:  # pragma: no cover - the schema allows no other rule
            raise fail(f"unknown rule {body!r}")
    positions = [p.position for p in pins]
    if len(set(positions)) != len(positions):
        raise fail_pins(doc, positions)
    return CompiledRules(
        doc.rules,
        doc.source,
        n,
        exclude if exclude.any() else None,
        tuple(windows),
        tuple(weights),
        tuple(caps),
        tuple(pins),
    )


def fail_pins(doc: Document, positions: Sequence[int]) -> RulesError:
    taken = next(p for p in positions if positions.count(p) > 1)
    r = [n for n, rule in enumerate(doc.rules.rules) if rule.pin and rule.pin.position == taken]
    line = doc.rule_line(r[-1]) or 1
    name = doc.rules.rules[r[-1]].name
    return RulesError(
        f"{doc.source}:{line}: rule {name!r}: pin: position {taken} is already pinned by rule "
        f"{doc.rules.rules[r[0]].name!r}",
        ("rules", r[-1]),
        line,
    )


def _attribute(attrs: Attributes, name: str, fail) -> list[list]:
    values = attrs.values(name)
    if values is None:
        raise fail(f"the catalog has no attribute {name!r} (it has: {', '.join(attrs.names())})")
    return values


def _matches(attrs: Attributes, match: Match, fail) -> np.ndarray:
    """bool [n_items]: the items matching every entry of ``match``."""
    out = np.ones(len(attrs), dtype=bool)
    for name, cond in match.where.items():
        if isinstance(cond, Range):
            numbers = attrs.numbers(name)
            if numbers is None:
                _attribute(attrs, name, fail)  # an unknown attribute says so first
                raise fail(f"{name!r} is not a number or date, so it takes values, not min/max")
            lo = -np.inf if cond.min is None else cond.min
            hi = np.inf if cond.max is None else cond.max
            with np.errstate(invalid="ignore"):
                out &= (numbers >= lo) & (numbers <= hi)
            continue
        values = _attribute(attrs, name, fail)
        wanted: set[object] = set()
        for v in cond:
            if isinstance(v, str):
                wanted.add(v.strip().casefold())
                with contextlib.suppress(ValueError):
                    wanted.add(float(v))
            else:
                wanted |= {float(v), str(v).casefold()}
        out &= np.fromiter((any(x in wanted for x in row) for row in values), bool, len(values))
    return out


def _freshness(attrs: Attributes, rule, fail) -> np.ndarray:
    numbers = attrs.numbers(rule.field)
    if numbers is None:
        _attribute(attrs, rule.field, fail)
        raise fail(f"freshness: {rule.field!r} is not a number or date")
    known = np.isfinite(numbers)
    if not known.any():
        return np.zeros(len(numbers))
    reference = rule.reference if rule.reference is not None else float(numbers[known].max())
    age = np.clip(reference - np.where(known, numbers, reference), 0.0, None)
    return np.where(known, rule.weight * np.exp2(-age / rule.half_life), 0.0)


def _groups(attrs: Attributes, field: str, fail) -> list[tuple[int, ...]]:
    values = _attribute(attrs, field, fail)
    codes: dict[object, int] = {}
    return [tuple(codes.setdefault(v, len(codes)) for v in dict.fromkeys(row)) for row in values]
