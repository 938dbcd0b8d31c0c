"""A small real catalog (two kinds: calm music vs action films), a trained hybrid model and a
database holding the same catalog, for the service tests. With ``media=True`` every item also
gets a poster (drawn here) and each music item a short piano-like chord, and the real encoders
(EfficientNet-Lite0, YAMNet, multilingual e5 moods) store their understanding in the database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from avrec.data import Dataset
from avrec.models.base import TrainData
from avrec.models.registry import create_model
from avrec.storage.db import get_engine
from avrec.storage.ingest import ingest

MUSIC = [
    "Calm piano nocturne",
    "Soft jazz for a rainy evening",
    "Gentle acoustic guitar",
    "Ambient meditation sounds",
    "Slow violin sonata",
    "Quiet lullaby for sleep",
]
FILMS = [
    "Car chase through the city",
    "Explosive heist thriller",
    "Soldiers storm the fortress",
    "Martial arts tournament fight",
    "Alien invasion battle",
    "Bank robbery gone wrong",
]


def draw_media(items: pd.DataFrame, root) -> pd.DataFrame:
    import soundfile as sf
    from PIL import Image, ImageDraw

    root.mkdir(parents=True, exist_ok=True)
    images, audio = [], []
    for n, row in enumerate(items.to_dict("records")):
        music = row["kind"] == "music"
        img = Image.new(
            "RGB", (200, 300), (40, 60 + 5 * n, 140) if music else (150, 30 + 5 * n, 20)
        )
        draw = ImageDraw.Draw(img)
        draw.ellipse((40, 60, 160, 180), fill=(240, 220, 80) if music else (250, 120, 30))
        draw.text((12, 260), row["title"][:28], fill=(255, 255, 255))
        img.save(root / f"{row['item_id']}.png")
        images.append(f"{row['item_id']}.png")
        if music:
            sr = 16_000
            t = np.arange(sr * 3) / sr
            chord = sum(
                np.sin(2 * np.pi * f * t) * np.exp(-3 * (t % 0.5)) for f in (261.6, 329.6, 392.0)
            )
            sf.write(root / f"{row['item_id']}.wav", (0.2 * chord).astype(np.float32), sr)
            audio.append(f"{row['item_id']}.wav")
        else:
            audio.append(None)
    return items.assign(image=images, audio=audio)


def build(tmp_path, media: bool = False, url: str | None = None, years: bool = False):
    """``years``: item ``n`` also has the year ``1990 + n``."""
    items = []
    for n in range(30):
        music = n % 2 == 0
        base = (MUSIC if music else FILMS)[n // 2 % 6]
        items.append(
            {
                "item_id": f"{'m' if music else 'f'}{n}",
                "title": f"{base} {n}",
                "genres": "Music|Calm" if music else "Action|Thriller",
                "kind": "music" if music else "movie",
                "language": "en",
                **({"year": 1990 + n} if years else {}),
            }
        )
    items = pd.DataFrame(items)
    if media:
        items = draw_media(items, tmp_path / "media")
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        pool = [
            i["item_id"] for i in items.to_dict("records") if (i["kind"] == "music") == (u % 2 == 0)
        ]
        for t, item in enumerate(rng.choice(pool, 7, replace=False)):
            rows.append((f"u{u}", item, 5.0, 1_000_000 + 60 * t))
    ds = Dataset(
        items,
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
        name="service-test",
        root=tmp_path / "media" if media else None,
    )
    url = url or f"sqlite:///{tmp_path / 'service.db'}"
    ingest(ds, get_engine(url))
    if media:
        from avrec.encoders.store import save_understanding
        from avrec.encoders.understand import encode_catalog

        understood = encode_catalog(ds, ["image", "audio", "text"])
        save_understanding(get_engine(url), understood.item_ids, understood.results)
    model = create_model("hybrid").fit(TrainData.from_dataset(ds))
    model.save(tmp_path / "model")
    return tmp_path / "model", url, items


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.1)
    assert srv.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(10)


CHROMIUM = "/usr/bin/chromium"


def launch_chromium(playwright):
    """Debian's Chromium, headless, as root (no sandbox), without background traffic."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
