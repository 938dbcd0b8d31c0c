"""A catalog card is plain JSON whatever the catalog frame's dtypes (a real catalog's years are
numpy int64, which the API's serializer refuses)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from avrec.data.vocab import Vocabulary
from avrec.service.catalog import Catalog


def test_cards_hold_python_values_for_numpy_and_missing_cells():
    frame = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Alien (1979)", "Heat (1995)", None],
            "genres": ["Horror|Sci-Fi", "", None],
            "year": pd.array([1979, None, 1995], dtype="Int64"),
        }
    )
    plain = frame.assign(year=np.array([1979, 1995, 2001], dtype=np.int64))
    for cat in (frame, plain):
        catalog = Catalog(cat, Vocabulary(cat["item_id"]), np.zeros(3), None)
        cards = [catalog.card(i) for i in ("a", "b", "c")]
        json.dumps(cards)  # plain Python values only
        assert cards[0]["year"] == 1979 and type(cards[0]["year"]) is int
        assert cards[0]["genres"] == ["Horror", "Sci-Fi"] and cards[2]["title"] is None
    assert Catalog(frame, Vocabulary(frame["item_id"]), np.zeros(3), None).card("b")["year"] is None
