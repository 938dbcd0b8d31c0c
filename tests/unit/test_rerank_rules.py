"""Business rules (avrec.rerank.rules): the file's schema and its error lines, and each rule
kind on a small catalog with a known right answer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from avrec.rerank.rules import (
    RulesError,
    apply_rules,
    cap_violations,
    compile_rules,
    parse_rules,
    with_reason,
)

#: 12 items: i0..i11; directors alternate A/B/C; years 1990..2001; genres cycle
CATALOG = pd.DataFrame(
    {
        "item_id": [f"i{n}" for n in range(12)],
        "title": [f"t{n}" for n in range(12)],
        "genres": ["Drama|Comedy", "Horror", "Drama", "Comedy"] * 3,
        "tags": [
            f"director:{'ABC'[n % 3]}|cast:X, Y|summer" if n < 4 else f"director:{'ABC'[n % 3]}"
            for n in range(12)
        ],
        "kind": ["movie", "movie", "series"] * 4,
        "language": ["en"] * 6 + ["fr"] * 6,
        "year": [1990.0 + n for n in range(12)],
    }
)
ALL = np.arange(12)
#: the model's scores: i0 best, then i1, ...
SCORES = -np.arange(12, dtype=float)


def ruled(rules_yaml: str, k: int = 12, scores=SCORES, **kw):
    compiled = compile_rules(parse_rules(rules_yaml), CATALOG)
    return compiled, apply_rules(compiled, ALL, scores, k, **kw)


def ids(out) -> list[str]:
    return [f"i{i}" for i in out.items]


def test_filters_exclude_include_and_ranges():
    _, out = ruled("rules:\n- name: f\n  filter: {exclude: {genre: horror}}\n")
    assert "i1" not in ids(out) and len(out.items) == 9
    _, out = ruled("rules:\n- name: f\n  filter: {include: {kind: series, language: [fr]}}\n")
    assert ids(out) == ["i8", "i11"]
    _, out = ruled("rules:\n- name: f\n  filter: {exclude: {year: {min: 1992, max: 2000}}}\n")
    assert ids(out) == ["i0", "i1", "i11"]
    _, out = ruled("rules:\n- name: f\n  filter: {exclude: {tag: SUMMER, director: [b]}}\n")
    assert ids(out) == [f"i{n}" for n in range(12) if n != 1]  # summer and directed by B


def test_availability_window_follows_the_time():
    text = (
        "rules:\n- name: xmas\n  availability:\n    match: {item: [i0, i2]}\n"
        "    from: 2026-12-01\n    until: 2027-01-01\n"
    )
    compiled = compile_rules(parse_rules(text), CATALOG)
    inside = dt.datetime(2026, 12, 24, tzinfo=dt.UTC)
    outside = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert ids(apply_rules(compiled, ALL, SCORES, 3, now=inside)) == ["i0", "i1", "i2"]
    assert ids(apply_rules(compiled, ALL, SCORES, 3, now=outside)) == ["i1", "i3", "i4"]
    fixed = compile_rules(parse_rules("now: 2026-12-02\n" + text), CATALOG)
    assert ids(apply_rules(fixed, ALL, SCORES, 1, now=outside)) == ["i0"]  # the file's now


def test_boost_moves_items_and_says_so():
    _, out = ruled(
        "rules:\n- name: summer-promo\n  boost: {match: {item: [i5, i9]}, weight: 3}\n", k=4
    )
    assert ids(out)[:2] == ["i5", "i9"]
    assert out.reasons[0] == "boosted by rule 'summer-promo'" and out.reasons[2] is None
    _, out = ruled("rules:\n- name: bury\n  boost: {match: {item: i0}, weight: -5}\n")
    assert ids(out)[-1] == "i0" and out.reasons[-1] == "lowered by rule 'bury'"
    assert with_reason("because you watched t1", "boosted by rule 'x'") == (
        "because you watched t1; boosted by rule 'x'"
    )


def test_freshness_prefers_recent_items_with_a_half_life():
    flat = np.zeros(12)
    compiled, out = ruled(
        "rules:\n- name: fresh\n  freshness: {half_life: 2, weight: 1}\n", scores=flat
    )
    assert ids(out)[:3] == ["i11", "i10", "i9"]
    weights = compiled.weights[0].values
    assert weights[11] == pytest.approx(1.0) and weights[9] == pytest.approx(0.5)


def test_cap_holds_in_every_list_and_explains_who_moved_up():
    text = (
        "rules:\n- name: one-per-director\n  cap: {field: director, max: 1, top: 3}\n"
        "- name: two-per-genre\n  cap: {field: genre, max: 2, top: 6}\n"
    )
    compiled, out = ruled(text, k=6)
    assert ids(out)[:3] == ["i0", "i1", "i2"]
    rng = np.random.default_rng(0)
    for _ in range(300):  # random scores and pools: the caps never break
        pool = rng.choice(12, rng.integers(1, 13), replace=False)
        got = apply_rules(compiled, pool, rng.normal(size=len(pool)), 6)
        assert cap_violations(compiled, got.items) == []
        assert len(set(got.items.tolist())) == len(got.items)
    compiled, out = ruled("rules:\n- name: cap\n  cap: {field: director, max: 1, top: 3}\n", k=4)
    _, plain = ruled("rules: []\n", k=4)
    assert ids(plain) == ["i0", "i1", "i2", "i3"]
    assert ids(out) == ["i0", "i1", "i2", "i3"]  # A, B, C: nothing to move
    scores = np.array([5, 4.9, 1, 4.8, 0, 0, 4.7, 0, 0, 0, 0, 0], dtype=float)
    out = apply_rules(compiled, ALL, scores, 3)  # i0, i3, i6 all by A
    assert ids(out) == ["i0", "i1", "i2"]
    assert out.reasons[2] == "moved up by rule 'cap' (at most 1 per director in the top 3)"


def test_a_cap_on_the_first_value_only():
    cap = "rules:\n- name: g\n  cap: {field: genre, max: 1, top: 3, values: %s}\n"
    assert ids(ruled(cap % "all", k=3)[1]) == ["i0", "i1"]  # i0 is Drama and Comedy
    assert ids(ruled(cap % "first", k=3)[1]) == ["i0", "i1", "i3"]


def test_pins_place_eligible_items_only():
    text = "rules:\n- name: feature\n  pin: {item: i7, position: 2}\n"
    _, out = ruled(text, k=4)
    assert ids(out) == ["i0", "i7", "i1", "i2"]
    assert out.reasons[1] == "pinned to position 2 by rule 'feature'"
    compiled, out = ruled(text, k=4, exclude=[7])  # seen: not brought back
    assert "i7" not in ids(out)
    out = apply_rules(compiled, np.array([0, 1, 2]), np.array([3.0, 2, 1]), 3)
    assert ids(out) == ["i0", "i7", "i1"] and out.pool.tolist() == [0, -1, 1]
    _, out = ruled(text + "- name: f\n  filter: {exclude: {item: i7}}\n", k=4)
    assert "i7" not in ids(out)
    # i7 is by B like i1: the pin counts against the cap before the list is filled
    _, out = ruled(text + "- name: c\n  cap: {field: director, max: 1, top: 3}\n", k=4)
    assert ids(out) == ["i0", "i7", "i2", "i1"]


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("rules:\n- name: a\n  boost:\n    match: {genre: x}\n    weight: heavy\n", 5, "weight"),
        ("rules:\n- name: a\n  cap: {field: genre, max: 0, top: 3}\n", 3, "max"),
        (
            "rules:\n- name: a\n  pin: {item: i1, position: 1}\n"
            "  boost: {match: {item: i1}, weight: 1}\n",
            2,
            "exactly one",
        ),
        (
            "rules:\n- name: a\n  cap: {field: genre, max: 1, top: 3}\n"
            "- name: a\n  pin: {item: i1, position: 1}\n",
            4,
            "unique",
        ),
        ("rules:\n- name: a\n  filter: {exclude: {genre: x}}\n  typo: 1\n", 4, "typo"),
        ("rules: [\n", 2, "YAML"),
        (
            '{"rules": [\n {"name": "a",\n  "boost": {"match": {"genre": ["x"]},\n'
            '   "weight": "heavy"}}]}',
            4,
            "weight",
        ),
        ('{"rules": [\n {"name": "a"}\n {"name": "b"}]}', 3, "JSON"),
    ],
)
def test_a_bad_file_is_one_line_naming_its_line(text, line, words):
    with pytest.raises(RulesError) as err:
        parse_rules(text, "r.yaml")
    message = str(err.value)
    assert message.startswith(f"r.yaml:{line}: ") and words in message and "\n" not in message


@pytest.mark.parametrize(
    "rule, words",
    [
        ("cap: {field: directr, max: 1, top: 3}", "no attribute 'directr'"),
        ("pin: {item: nope, position: 1}", "'nope' is not in the catalog"),
        ("boost: {match: {genre: {min: 1}}, weight: 1}", "not a number"),
    ],
)
def test_what_the_catalog_lacks_names_the_rule_line(rule, words):
    doc = parse_rules(
        f"rules:\n- name: ok\n  filter: {{exclude: {{genre: x}}}}\n- name: bad\n  {rule}\n",
        "r.yaml",
    )
    with pytest.raises(RulesError, match=words) as err:
        compile_rules(doc, CATALOG)
    assert str(err.value).startswith("r.yaml:4: rule 'bad'")
