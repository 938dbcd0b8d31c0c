"""How an ad's creative looks, and how the catalog's videos look, in one vector space.

The same encoders as the catalog (``avrec encode``, :mod:`avrec.encoders.understand`):

- an ad's ``image``: EfficientNet-Lite0's pooled features (the registry's ``image`` encoder,
  through :func:`~avrec.encoders.understand.understand_images`), cached by the file's content
  hash under the catalog's image key, so a poster that is also a catalog item's is encoded once;
- an ad's ``video``: the pooled frame vector (frames about one a second, at most 16, through the
  same EfficientNet-Lite0, averaged): from the catalog's video cache when ``avrec encode`` has
  analysed the file, else from the registry's ``video`` encoder (frames only), cached by
  content hash under its key;
- the catalog's items: their image and video vectors from the encoders' cache
  (:func:`~avrec.encoders.understand.cached_media`, what ``avrec encode`` fills), the missing
  ones encoded first where asked.

Each side gets one visual vector: the normalised mean of the image and video vectors it has
(both unit vectors of the same feature space), a zero row where it has neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.ads.catalog import Ad, AdCatalogError
from avrec.errors import Problem

#: EfficientNet-Lite0's pooled features
DIM = 1280


def combine(n: int, *blocks: np.ndarray | None) -> np.ndarray:
    """``float32 [n, DIM]``: per row the normalised mean of the blocks' non-zero rows (zero
    where every block's row is zero)."""
    total = np.zeros((n, DIM), np.float32)
    for block in blocks:
        if block is not None and block.size:
            total += np.asarray(block, np.float32)
    norms = np.linalg.norm(total, axis=1, keepdims=True)
    return total / np.where(norms > 0, norms, 1.0)


def present(vectors: np.ndarray) -> np.ndarray:
    """Rows that hold a vector (not all zero)."""
    return np.abs(vectors).sum(axis=1) > 0


def _problem(ad: Ad, column: str, message: str) -> AdCatalogError:
    where = ad.source or f"ad {ad.ad_id!r}"
    return AdCatalogError([Problem(where, ad.line, column, message)])


def _path(ad: Ad, column: str) -> tuple[Path, Path]:
    """(the ad's media folder, the validated file its media column names)."""
    from avrec.data.validation import media_problem

    rel = getattr(ad, column)
    if ad.media_root is None:
        raise _problem(ad, column, f"{rel!r}: no folder known for the ad's media paths")
    root = Path(ad.media_root).resolve()
    problem = media_problem(root, rel)
    if problem is not None:
        raise _problem(ad, column, problem)
    return root, (root / rel).resolve()


def _images(ads: Sequence[Ad], keys) -> np.ndarray:
    from avrec.encoders.understand import understand_images

    out = np.zeros((len(ads), DIM), np.float32)
    by_root: dict[Path, list[int]] = {}
    for n, ad in enumerate(ads):
        if ad.image:
            by_root.setdefault(_path(ad, "image")[0], []).append(n)
    for root, picked in by_root.items():  # ads of one file share its folder
        result = understand_images([{"image": ads[n].image} for n in picked], root, keys=keys)
        for n, status, reason, vec in zip(
            picked, result.status, result.reasons, result.vectors, strict=True
        ):
            if status != "ok":
                raise _problem(ads[n], "image", reason or "not a usable image")
            out[n] = vec
    return out


def _videos(ads: Sequence[Ad], keys) -> np.ndarray:
    from avrec.encoders.cache import EmbeddingCache
    from avrec.encoders.media import MediaError
    from avrec.encoders.registry import get_encoder
    from avrec.encoders.understand import VERSIONS

    out = np.zeros((len(ads), DIM), np.float32)
    todo = [(n, _path(ad, "video")[1]) for n, ad in enumerate(ads) if ad.video]
    if not todo:
        return out
    analysed = EmbeddingCache(f"video@{VERSIONS['video']}")  # avrec encode's full analysis
    encoder = get_encoder("video")
    frames = EmbeddingCache(encoder.key)
    for n, path in todo:
        key = keys(path)
        vec = analysed.get(key) if key in analysed else frames.get(key)
        if vec is None:
            try:
                vec = encoder.encode([path])[0]
            except MediaError as exc:
                raise _problem(ads[n], "video", str(exc)) from None
            frames.put_many([key], vec[None])
        out[n] = vec
    return out


def encode_ad_media(ads: Sequence[Ad]) -> np.ndarray:
    """``float32 [n_ads, DIM]``: each ad's visual vector (zero row: no image or video). A
    file that cannot be read is an :class:`AdCatalogError` naming the ad's line and column."""
    from avrec.encoders.cache import FileKeys

    if not any(ad.image or ad.video for ad in ads):
        return np.zeros((len(ads), DIM), np.float32)
    with FileKeys() as keys:
        return combine(len(ads), _images(ads, keys), _videos(ads, keys))


def catalog_visuals(
    items: pd.DataFrame,
    root: Path | None,
    *,
    encode_missing: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, int]:
    """(``float32 [n_items, DIM]`` visual vectors in ``items``' row order, how many items name
    a readable image or video that is not encoded). Media paths are relative to ``root``; none
    (or no media column): zero rows. ``encode_missing``: encode those first (the catalog's
    encoders and cache, as ``avrec encode``)."""
    from avrec.encoders.understand import cached_media, encode_catalog

    columns = [c for c in ("image", "video") if c in items.columns]
    if root is None or not columns or not items[columns].notna().to_numpy().any():
        return np.zeros((len(items), DIM), np.float32), 0
    found = cached_media(items, root, columns)
    todo = [m for m, count in found.missing.items() if count]
    if encode_missing and todo:
        encode_catalog(items, todo, root, progress=progress)
        found = cached_media(items, root, columns)
    vectors = combine(len(items), *(found.vectors.get(c) for c in columns))
    return vectors, sum(found.missing.values())


def with_media(catalog: pd.DataFrame, media: pd.DataFrame) -> pd.DataFrame:
    """``catalog`` (rows kept in order) with the ``image`` and ``video`` paths that ``media``
    (``item_id`` plus either column, e.g. the dataset's items) gives its items: a saved model's
    catalog keeps no media paths."""
    columns = [c for c in ("image", "video") if c in media.columns]
    paths = media[["item_id", *columns]].astype({"item_id": str}).drop_duplicates("item_id")
    base = catalog.drop(columns=[c for c in columns if c in catalog.columns])
    out = base.assign(item_id=base["item_id"].astype(str)).merge(paths, on="item_id", how="left")
    for c in columns:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out
