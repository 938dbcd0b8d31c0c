"""The ad catalog: ``ads.csv``, validated on load, every problem naming its line.

Columns (header names; ``|`` separates the values of a list column; an empty list: any):

| column | required | meaning |
|---|---|---|
| ``ad_id`` | yes | unique id of the ad |
| ``advertiser`` | yes | who pays for it |
| ``text`` | yes | the creative's text (what the text encoder reads) |
| ``item_id`` | no | the catalog item the ad promotes (a film's trailer), if any |
| ``image``, ``video`` | no | the creative's media files, relative to the ads file's folder |
| ``kinds``, ``genres``, ``languages`` | no | targeting: the video the ad may run next to |
| ``min_age``, ``max_age``, ``locales`` | no | targeting: the person (the user's attributes) |
| ``bid`` | yes | what the advertiser pays per engagement (a click), > 0 |
| ``daily_budget`` | yes | the most it spends in a day (UTC), > 0 |
| ``frequency_cap`` | yes | impressions per person per day, >= 1 |
| ``start``, ``end`` | no | flight dates (``YYYY-MM-DD``, inclusive) |
| ``exclude`` | no | brand safety: genres or tags of content the ad must never appear next to |
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.data.dataset import split_multi
from avrec.errors import Problem, ValidationError

REQUIRED = ("ad_id", "advertiser", "text", "bid", "daily_budget", "frequency_cap")
OPTIONAL = (
    "item_id",
    "image",
    "video",
    "kinds",
    "genres",
    "languages",
    "min_age",
    "max_age",
    "locales",
    "start",
    "end",
    "exclude",
)
COLUMNS = REQUIRED + OPTIONAL


class AdCatalogError(ValidationError):
    """``ads.csv`` failed validation; each problem names its line."""


@dataclass(frozen=True)
class Ad:
    ad_id: str
    advertiser: str
    text: str
    bid: float
    daily_budget: float
    frequency_cap: int
    item_id: str | None = None
    image: str | None = None
    video: str | None = None
    kinds: frozenset[str] = frozenset()
    genres: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    min_age: int | None = None
    max_age: int | None = None
    locales: frozenset[str] = frozenset()
    start: dt.date | None = None
    end: dt.date | None = None
    #: brand safety, lower-cased: genres or tags of content the ad never runs next to
    exclude: frozenset[str] = frozenset()
    #: the folder ``image`` and ``video`` are relative to (the ads file's), and the file and
    #: line the ad was read from (for errors about its media)
    media_root: Path | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)

    def encoder_text(self) -> str:
        """What the text encoder reads: the creative's text and the genres it targets."""
        genres = sorted(self.genres)
        return self.text + (". Genres: " + ", ".join(genres) if genres else "")


def _lower_set(value: str) -> frozenset[str]:
    return frozenset(v.lower() for v in split_multi(value))


def _positive(raw: str, name: str, integer: bool = False) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number > 0, not {raw!r}")
    if integer and value != int(value):
        raise ValueError(f"{name} must be a whole number, not {raw!r}")
    return value


def _age(raw: str, name: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > 150:
        raise ValueError(f"{name} must be a whole number of years 0-150, not {raw!r}")
    return int(raw)


def _date(raw: str, name: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, not {raw!r}") from None


def parse_row(row: dict[str, str]) -> Ad:
    """One validated ad (``ValueError`` naming the column's problem)."""
    get = {k: (row.get(k) or "").strip() for k in COLUMNS}
    for name in ("ad_id", "advertiser", "text"):
        if not get[name]:
            raise ValueError(f"{name} is empty")
    if len(get["ad_id"]) > 256 or any(ord(c) < 32 for c in get["ad_id"]):
        raise ValueError("ad_id must be 1-256 characters without control characters")
    values = {}
    for name in ("bid", "daily_budget"):
        try:
            values[name] = _positive(get[name], name)
        except ValueError as exc:
            raise ValueError(str(exc) if "must" in str(exc) else f"{name}: not a number") from None
    try:
        cap = _positive(get["frequency_cap"], "frequency_cap", integer=True)
    except ValueError as exc:
        raise ValueError(
            str(exc) if "must" in str(exc) else "frequency_cap must be a whole number >= 1"
        ) from None
    min_age, max_age = _age(get["min_age"], "min_age"), _age(get["max_age"], "max_age")
    if min_age is not None and max_age is not None and min_age > max_age:
        raise ValueError(f"min_age {min_age} is above max_age {max_age}")
    start, end = _date(get["start"], "start"), _date(get["end"], "end")
    if start and end and start > end:
        raise ValueError(f"the flight ends ({end}) before it starts ({start})")
    return Ad(
        ad_id=get["ad_id"],
        advertiser=get["advertiser"],
        text=get["text"],
        bid=values["bid"],
        daily_budget=values["daily_budget"],
        frequency_cap=int(cap),
        item_id=get["item_id"] or None,
        image=get["image"] or None,
        video=get["video"] or None,
        kinds=_lower_set(get["kinds"]),
        genres=_lower_set(get["genres"]),
        languages=_lower_set(get["languages"]),
        min_age=min_age,
        max_age=max_age,
        locales=_lower_set(get["locales"]),
        start=start,
        end=end,
        exclude=_lower_set(get["exclude"]),
    )


def _media_problems(ad: Ad, folder: Path) -> list[tuple[str, str]]:
    """(column, problem) for each media path of ``ad`` that names no usable file in
    ``folder`` (absolute, outside it, missing, not a file, empty)."""
    from avrec.data.validation import media_problem

    out = []
    for column in ("image", "video"):
        rel = getattr(ad, column)
        if rel is None:
            continue
        problem = media_problem(folder, rel)
        if problem is None and (folder / rel).stat().st_size == 0:
            problem = f"media file {rel!r} is empty (0 bytes)"
        if problem is not None:
            out.append((column, problem.replace("the dataset folder", "the ads file's folder")))
    return out


def load_ads(path: str | Path) -> list[Ad]:
    """Every ad of ``path`` (CSV with a header), or :class:`AdCatalogError` listing every
    problem with its line (the header is line 1). ``image`` and ``video`` must name files in
    the file's folder (or below it)."""
    path = Path(path)
    name = str(path)
    folder = path.parent.resolve()
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            problems = _header_problems(name, header)
            if problems:
                raise AdCatalogError(problems)
            ads: list[Ad] = []
            seen: dict[str, int] = {}
            for row in reader:
                line = reader.line_num
                if None in row:
                    problems.append(Problem(name, line, None, "more fields than the header has"))
                    continue
                try:
                    ad = parse_row(row)
                except ValueError as exc:
                    problems.append(Problem(name, line, None, str(exc)))
                    continue
                if ad.ad_id in seen:
                    msg = f"ad_id {ad.ad_id!r} repeats line {seen[ad.ad_id]}"
                    problems.append(Problem(name, line, "ad_id", msg))
                    continue
                seen[ad.ad_id] = line
                media = _media_problems(ad, folder)
                problems += [Problem(name, line, col, msg) for col, msg in media]
                if not media:
                    ads.append(replace(ad, media_root=folder, source=name, line=line))
    except FileNotFoundError:
        raise AdCatalogError([Problem(name, None, None, "no such file")]) from None
    except UnicodeDecodeError:
        raise AdCatalogError([Problem(name, None, None, "not UTF-8 text")]) from None
    except csv.Error as exc:
        raise AdCatalogError([Problem(name, None, None, f"not a CSV file: {exc}")]) from None
    if problems:
        raise AdCatalogError(problems)
    if not ads:
        raise AdCatalogError([Problem(name, None, None, "no ads (only a header)")])
    return ads


def _header_problems(name: str, header: list[str]) -> list[Problem]:
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    problems = []
    if missing:
        problems.append(Problem(name, 1, None, f"missing column(s): {', '.join(missing)}"))
    if unknown:
        known = ", ".join(COLUMNS)
        msg = f"unknown column(s): {', '.join(unknown)} (known: {known})"
        problems.append(Problem(name, 1, None, msg))
    return problems


def ads_frame(ads: list[Ad]) -> pd.DataFrame:
    """The ads as a table (lists joined by ``|``), e.g. to write an ``ads.csv``."""
    rows = []
    for ad in ads:
        row = {}
        for col in COLUMNS:
            value = getattr(ad, col)
            if isinstance(value, frozenset):
                value = "|".join(sorted(value))
            elif isinstance(value, dt.date):
                value = value.isoformat()
            row[col] = "" if value is None else value
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def encode_ads(ads: list[Ad], encoder: str = "text-en") -> np.ndarray:
    """``float32 [n_ads, d]`` L2-normalised vectors of the ads' text, with the encoder (and its
    content-hash cache) the catalog's text vectors come from."""
    from avrec.encoders.pipeline import encode_texts_cached

    return encode_texts_cached([ad.encoder_text() for ad in ads], encoder)
