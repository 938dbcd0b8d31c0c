"""A small real catalog (two kinds: calm music vs action films), a trained hybrid model and a
database holding the same catalog, for the service tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from avrec.data import Dataset
from avrec.models.base import TrainData
from avrec.models.registry import create_model
from avrec.storage.db import get_engine
from avrec.storage.ingest import ingest

MUSIC = ["Calm piano nocturne", "Soft jazz for a rainy evening", "Gentle acoustic guitar",
         "Ambient meditation sounds", "Slow violin sonata", "Quiet lullaby for sleep"]
FILMS = ["Car chase through the city", "Explosive heist thriller", "Soldiers storm the fortress",
         "Martial arts tournament fight", "Alien invasion battle", "Bank robbery gone wrong"]


def build(tmp_path):
    items = []
    for n in range(30):
        music = n % 2 == 0
        base = (MUSIC if music else FILMS)[n // 2 % 6]
        items.append({"item_id": f"{'m' if music else 'f'}{n}", "title": f"{base} {n}",
                      "genres": "Music|Calm" if music else "Action|Thriller",
                      "kind": "music" if music else "movie", "language": "en"})
    items = pd.DataFrame(items)
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        pool = [i["item_id"] for i in items.to_dict("records") if (i["kind"] == "music") == (u % 2 == 0)]
        for t, item in enumerate(rng.choice(pool, 7, replace=False)):
            rows.append((f"u{u}", item, 5.0, 1_000_000 + 60 * t))
    ds = Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
                 name="service-test")
    url = f"sqlite:///{tmp_path / 'service.db'}"
    ingest(ds, get_engine(url))
    model = create_model("hybrid").fit(TrainData.from_dataset(ds))
    model.save(tmp_path / "model")
    return tmp_path / "model", url, items
