"""Online user state: after any sequence of events the in-place user vector equals the sum of
the history items' vectors (and the rejected vector that of the rejected items), history and
rejected items never overlap, and the polarity rules hold."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from avrec.feedback.online import OnlineStates, polarity

VECTORS = np.random.default_rng(0).normal(size=(8, 5))
ITEMS = [f"i{n}" for n in range(8)]


def vector_of(item):
    return VECTORS[int(item[1:])] if item in ITEMS else None


event = st.tuples(
    st.sampled_from(ITEMS),
    st.sampled_from(["like", "dislike", "skip", "play", "rating", "view"]),
    st.one_of(st.none(), st.floats(0, 5)),
    st.one_of(st.none(), st.floats(0, 1)),
)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.lists(st.sampled_from(ITEMS), max_size=4, unique=True),
    events=st.lists(event, max_size=30),
)
def test_vector_is_the_sum_of_the_history(seed, events):
    states = OnlineStates(vector_of)
    states.get("u", seed)
    for item, name, value, fraction in events:
        states.apply("u", item, name, value, fraction)
    s = states.snapshot("u")
    assert not set(s.history) & set(s.negatives)
    assert len(set(s.history)) == len(s.history)
    expected = VECTORS[[int(i[1:]) for i in s.history]].sum(axis=0) if s.history else np.zeros(5)
    got = s.vector if s.vector is not None else np.zeros(5)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    rejected = (
        VECTORS[[int(i[1:]) for i in s.negatives]].sum(axis=0) if s.negatives else np.zeros(5)
    )
    got_neg = s.negative_vector if s.negative_vector is not None else np.zeros(5)
    np.testing.assert_allclose(got_neg, rejected, atol=1e-9)
    assert s.events == len(events)
    if s.history:
        q = s.query_vector()
        assert q is None or abs(np.linalg.norm(q) - 1) < 1e-5


def test_polarity_rules_and_most_recent_last():
    assert polarity("play", None, 0.9) == 1 and polarity("play", None, 0.1) == -1
    assert polarity("play", None, 0.3) == 0 and polarity("rating", 4.5, None) == 1
    assert polarity("rating", 3, None) == 0 and polarity("rating", 1, None) == -1
    states = OnlineStates(vector_of)
    for item in ("i1", "i2", "i1"):
        states.apply("v", item, "like", None, None)
    assert states.snapshot("v").history == ["i2", "i1"]
    states.apply("v", "i1", "skip", None, None)
    snap = states.snapshot("v")
    assert snap.history == ["i2"] and snap.negatives == ["i1"]
    np.testing.assert_allclose(snap.vector, VECTORS[2])
