"""The business-rules file: its schema (pydantic) and reading it from YAML or JSON with the
line of every entry, so that an error names the line it is on.

A file is ``{"version": 1, "now": <date, optional>, "rules": [<rule>, ...]}``; each rule has a
unique ``name`` and exactly one of ``filter``, ``availability``, ``boost``, ``cap``, ``pin``,
``freshness`` (see docs/rules.md for what each does and an example file).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from avrec.errors import AvrecError

#: what a rule may be, in the order they are applied
KINDS = ("filter", "availability", "boost", "freshness", "cap", "pin")
#: the largest boost weight accepted (in standard deviations of the candidates' scores)
MAX_WEIGHT = 100.0
MAX_RULES = 1_000

Scalar = str | int | float
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Attribute = Annotated[str, Field(min_length=1, max_length=100)]


class RulesError(AvrecError):
    """A rules file (or body) that cannot be used: one line naming where and why."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = (), line: int | None = None):
        super().__init__(message)
        #: where in the document (``("rules", 2, "cap", "max")``) and on which line of the file
        self.loc, self.line = loc, line


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class Range(_Strict):
    """A numeric attribute between ``min`` and ``max`` (inclusive; either may be left out)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


Condition = Range | Annotated[list[Scalar], Field(min_length=1, max_length=100_000)]


def _as_list(value: Any) -> Any:
    """A single value where a list is expected is a list of one."""
    return (
        [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value
    )


class Match(_Strict):
    """Items whose attributes match every entry of ``where`` (attribute -> values or range):
    ``{"genre": ["Horror"], "year": {"min": 1990}}``. Attributes: ``item`` (ids), ``genre``,
    ``tag``, any catalog column (``kind``, ``language``, ``year``, ...) and any name used as a
    prefix in the catalog's tags (``director`` for ``director:Jane Doe``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    where: dict[Attribute, Condition] = Field(min_length=1, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _plain_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) != {"where"}:
            value = {"where": value}
        if isinstance(value, dict) and isinstance(value["where"], dict):
            value = {"where": {k: _as_list(v) for k, v in value["where"].items()}}
        return value


class Filter(_Strict):
    """``exclude``: drop the items that match; ``include``: keep only the items that match."""

    exclude: Match | None = None
    include: Match | None = None

    @model_validator(mode="after")
    def _one(self) -> Filter:
        if (self.exclude is None) == (self.include is None):
            raise ValueError("give exactly one of exclude or include")
        return self


class Availability(_Strict):
    """The items that ``match`` are shown only from ``from`` until ``until`` (UTC; a date
    means its midnight; either may be left out)."""

    match: Match
    start: dt.datetime | None = Field(default=None, alias="from")
    end: dt.datetime | None = Field(default=None, alias="until")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return _midnight(value)

    @model_validator(mode="after")
    def _window(self) -> Availability:
        if self.start is None and self.end is None:
            raise ValueError("give from, until or both")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("from must be before until")
        return self


class Boost(_Strict):
    """Add ``weight`` (standard deviations of the candidates' scores; negative lowers) to the
    items that ``match``."""

    match: Match
    weight: float = Field(ge=-MAX_WEIGHT, le=MAX_WEIGHT)


class Freshness(_Strict):
    """Add ``weight * 2 ** (-age / half_life)``: ``age`` is ``reference - field`` in the field's
    units (years for ``year``; for a date column, years since the date), never below 0;
    ``reference`` defaults to the newest value in the catalog, so the result does not depend on
    the day it is computed. Items without the field get nothing."""

    field: Attribute = "year"
    half_life: float = Field(gt=0, le=1e6)
    weight: float = Field(gt=0, le=MAX_WEIGHT)
    reference: float | None = None


class Cap(_Strict):
    """At most ``max`` items per value of ``field`` among the first ``top``. An item with
    several values (genres) counts for each (``values: all``) or for its first one only
    (``values: first``, its main genre); items without a value are not capped."""

    field: Attribute
    max: int = Field(ge=1, le=10_000)
    top: int = Field(ge=1, le=10_000)
    values: Literal["all", "first"] = "all"


class Pin(_Strict):
    """Show ``item`` at ``position`` (1 is the first) wherever it is eligible: it passes the
    filters and the person has not seen or rejected it."""

    item: Annotated[str, Field(min_length=1, max_length=256)]
    position: int = Field(ge=1, le=10_000)

    @field_validator("item", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Rule(_Strict):
    name: Name
    filter: Filter | None = None
    availability: Availability | None = None
    boost: Boost | None = None
    freshness: Freshness | None = None
    cap: Cap | None = None
    pin: Pin | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a rule has exactly one of {', '.join(KINDS)}; got "
                f"{', '.join(given) if given else 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> Filter | Availability | Boost | Freshness | Cap | Pin:
        return getattr(self, self.kind)


class RuleSet(_Strict):
    version: Literal[1] = 1
    #: the time availability windows are judged at (None: the clock at each request)
    now: dt.datetime | None = None
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)

    @field_validator("now", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return _midnight(value)


def _midnight(value: Any) -> Any:
    """A date as its midnight UTC, a naive datetime as UTC (aware ones are kept)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value  # pydantic names the problem
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), dt.UTC)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


# ---- reading a file with its lines ------------------------------------------------------


class Document:
    """A parsed rules file: the rule set and the line each entry starts on."""

    def __init__(self, rules: RuleSet, lines: dict[tuple, int], source: str, text: str):
        self.rules, self.lines, self.source, self.text = rules, lines, source, text

    def line_of(self, loc: tuple) -> int | None:
        """The line of the deepest entry of ``loc`` that has one."""
        for n in range(len(loc), -1, -1):
            if tuple(loc[:n]) in self.lines:
                return self.lines[tuple(loc[:n])]
        return None

    def rule_line(self, index: int) -> int | None:
        return self.line_of(("rules", index))


def parse_rules(text: str, source: str = "rules", fmt: str | None = None) -> Document:
    """Validate a rules document (``fmt``: ``"json"`` or ``"yaml"``; None: JSON when the text
    starts with ``{``). The first problem raises a :class:`RulesError`:
    ``<source>:<line>: rule 'name': <where>: <what>``."""
    fmt = fmt or ("json" if text.lstrip().startswith("{") else "yaml")
    data, lines = _read_json(text, source) if fmt == "json" else _read_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"{source}:1: expected a mapping with a 'rules' list", (), 1)
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as exc:
        raise _first_problem(exc, data, lines, source) from None
    doc = Document(rules, lines, source, text)
    seen: dict[str, int] = {}
    for n, rule in enumerate(rules.rules):
        if rule.name in seen:
            line = doc.rule_line(n) or 1
            raise RulesError(
                f"{source}:{line}: rule {rule.name!r}: another rule (rule {seen[rule.name] + 1}) "
                "has this name; names must be unique",
                ("rules", n, "name"),
                line,
            )
        seen[rule.name] = n
    return doc


def read_rules(path: Path) -> Document:
    """:func:`parse_rules` of a ``.json``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise RulesError(f"{path}: a rules file is .json, .yaml or .yml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    return parse_rules(text, str(path), "json" if suffix == ".json" else "yaml")


def _first_problem(exc: ValidationError, data: dict, lines: dict, source: str) -> RulesError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not _union_tag(p))
    msg = str(err["msg"]).removeprefix("Value error, ")
    line = Document(RuleSet(), lines, source, "").line_of(loc)
    where = ".".join(str(p) for p in loc[2:])
    rule = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        name = _rule_name(data, loc[1])
        rule = f"rule {name!r}" if name else f"rule {loc[1] + 1}"
    elif loc:
        where = ".".join(str(p) for p in loc)
    text = ": ".join(p for p in (rule, where, msg) if p)
    return RulesError(f"{source}:{line or 1}: {text}", loc, line or 1)


def _union_tag(part: str | int) -> bool:
    """Whether ``part`` of an error's location is pydantic's name for a member of a union
    (or the wrapper of a match), not a key of the document."""
    return isinstance(part, str) and (part in ("Range", "where") or "[" in part)


def _rule_name(data: dict, index: int) -> str | None:
    rules = data.get("rules")
    if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
        name = rules[index].get("name")
        return name if isinstance(name, str) else None
    return None


def _read_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - a core dependency
        raise RulesError(f"{source}: reading YAML needs PyYAML; write the rules as JSON") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RulesError(f"{source}:{line}: not valid YAML: {what}", (), line) from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _yaml_lines(node, (), lines)
    return data, lines


def _yaml_lines(node: Any, path: tuple, out: dict[tuple, int]) -> None:
    import yaml

    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _yaml_lines(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for n, value in enumerate(node.value):
            _yaml_lines(value, (*path, n), out)


def _read_json(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    def no_constant(name: str) -> float:
        raise ValueError(f"{name} is not a number")

    try:
        data = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise RulesError(
            f"{source}:{exc.lineno}: not valid JSON: {exc.msg}", (), exc.lineno
        ) from None
    except ValueError as exc:
        raise RulesError(f"{source}: not valid JSON: {exc}") from None
    lines: dict[tuple, int] = {}
    _json_lines(text, 0, (), lines, _newlines(text))
    return data, lines


def _newlines(text: str) -> list[int]:
    return [n for n, c in enumerate(text) if c == "\n"]


def _json_lines(text: str, i: int, path: tuple, out: dict, breaks: list[int]) -> int:
    """Records the line of the value starting at (or after whitespace from) ``i`` and of
    everything inside it; returns the index after it (``text`` is valid JSON)."""
    i = _skip(text, i)
    out[path] = bisect.bisect_right(breaks, i - 1) + 1
    if text[i] == "{":
        i = _skip(text, i + 1)
        while text[i] != "}":
            key, i = _DECODER.raw_decode(text, i)
            line = bisect.bisect_right(breaks, i - 1) + 1
            i = _json_lines(text, _skip(text, i) + 1, (*path, key), out, breaks)
            out[(*path, key)] = line
            i = _skip(text, i)
            i = _skip(text, i + 1) if text[i] == "," else i
        return i + 1
    if text[i] == "[":
        i, n = _skip(text, i + 1), 0
        while text[i] != "]":
            i = _skip(text, _json_lines(text, i, (*path, n), out, breaks))
            i, n = (_skip(text, i + 1) if text[i] == "," else i), n + 1
        return i + 1
    return _DECODER.raw_decode(text, i)[1]


_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i
