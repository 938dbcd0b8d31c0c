"""The one feature path: item feature matrices aligned with a catalog, built the same way for
training, evaluation, recommendation and the service.

:func:`item_features` reads the catalog (``dataset.items``) and its media files only, never
interactions, so the features cannot carry test interactions into training: genre one-hot,
pretrained text vectors (from the encoders' content-hash cache over
``avrec.encoders.itemtext.item_text``; the cache maps a hash of an item's text to its vector, so
a model can only look up vectors for texts it already holds) and, with ``media``, the image,
video and audio vectors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.dataset import Dataset, split_multi


def genre_vocabulary(items: pd.DataFrame, column: str = "genres") -> list[str]:
    """The sorted distinct ``|``-separated values of ``column`` (the columns of
    :func:`genre_matrix`)."""
    if column not in items.columns:
        return []
    return sorted({g for v in items[column] for g in split_multi(v)})


def genre_matrix(
    items: pd.DataFrame, column: str = "genres", vocab: list[str] | None = None
) -> np.ndarray:
    """One-hot of ``|``-separated values, rows L2-normalised (zero rows for items without).
    ``vocab`` fixes the columns (e.g. the vocabulary a model was trained with; values outside
    it are ignored); by default it is :func:`genre_vocabulary` of ``items``."""
    vocab = genre_vocabulary(items, column) if vocab is None else list(vocab)
    values = (
        [split_multi(v) for v in items[column]] if column in items.columns else [[]] * len(items)
    )
    index = {g: n for n, g in enumerate(vocab)}
    out = np.zeros((len(items), max(len(vocab), 1)), dtype=np.float32)
    for r, row in enumerate(values):
        for g in row:
            if g in index:
                out[r, index[g]] = 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def people_matrix(items: pd.DataFrame, min_count: int = 2) -> np.ndarray:
    """One-hot of the names in ``tags`` (``director:A|cast:B, C`` -> director:A, cast:B, cast:C;
    plain tags as tag:x), names on at least ``min_count`` items; rows L2-normalised."""
    rows = []
    for value in items["tags"] if "tags" in items else [""] * len(items):
        names: list[str] = []
        for part in split_multi(value):
            if ":" in part:
                kind, rest = part.split(":", 1)
                names += [f"{kind}:{x.strip()}" for x in rest.split(",") if x.strip()]
            else:
                names.append(f"tag:{part}")
        rows.append(set(names))
    counts = Counter(n for r in rows for n in r)
    vocab = {n: i for i, n in enumerate(sorted(n for n, c in counts.items() if c >= min_count))}
    pairs = [(r, vocab[n]) for r, names in enumerate(rows) for n in names if n in vocab]
    r = np.array([p[0] for p in pairs], dtype=np.int64)
    c = np.array([p[1] for p in pairs], dtype=np.int64)
    m = sp.csr_matrix(
        (np.ones(len(pairs), np.float32), (r, c)), shape=(len(items), max(len(vocab), 1))
    ).toarray()
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


def period_matrix(
    items: pd.DataFrame, start: int = 1920, stop: int = 2030, step: int = 5
) -> np.ndarray:
    """One-hot of the release period (``year`` in ``step``-year bins; one column for unknown)."""
    year = (
        pd.to_numeric(items["year"], errors="coerce").to_numpy(float)
        if "year" in items
        else np.full(len(items), np.nan)
    )
    edges = np.arange(start, stop, step)
    known = ~np.isnan(year)
    col = np.full(len(items), len(edges))
    col[known] = np.clip(np.searchsorted(edges, year[known]), 0, len(edges) - 1)
    out = np.zeros((len(items), len(edges) + 1), np.float32)
    out[np.arange(len(items)), col] = 1.0
    return out


def item_texts(dataset: Dataset) -> list[str]:
    """One text per catalog item, in ``dataset.items`` order ("" where the item has none)."""
    from avrec.encoders.itemtext import item_text

    return [item_text(row) for row in dataset.items.to_dict("records")]


def item_features(
    dataset: Dataset,
    *,
    text_encoder: str | None = "text-en",
    media: bool = False,
    encode_missing: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """The feature matrices of :func:`featurize` alone."""
    return featurize(
        dataset,
        text_encoder=text_encoder,
        media=media,
        encode_missing=encode_missing,
        progress=progress,
        log=log,
    )[1]


def featurize(
    dataset: Dataset,
    *,
    text_encoder: str | None = "text-en",
    media: bool = False,
    modalities: Sequence[str] = ("image", "video", "audio"),
    encode_missing: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[Dataset, dict[str, np.ndarray]]:
    """What a model trains on, the same for ``avrec train`` and ``avrec evaluate``: the dataset
    (with media, its items also carry the videos' on-screen text and transcripts as
    ``ocr_text`` / ``transcript`` columns, which the item texts include) and the feature
    matrices aligned with its items (the ``item_features`` of ``TrainData``).

    - ``"genres"``: genre one-hot, L2-normalised rows (zero rows for items without genres);
    - ``"text"`` (when ``text_encoder`` is set): pretrained text vectors of :func:`item_texts`,
      L2-normalised; items without any text get a zero row (and ``"has_text"`` = 0), and
      :func:`content_vectors` falls back to their genre one-hot;
    - ``"has_text"``: ``[n_items, 1]`` 1.0 where the item has text.

    - with ``media``: ``"image"``, ``"video"``, ``"audio"`` vectors of the catalog's files from
      the encoders' cache (:func:`avrec.encoders.understand.cached_media`; zero rows where
      none), and the videos' on-screen text and transcripts in the text. With
      ``encode_missing`` the files not in the cache yet are encoded first (the same encoders
      and cache as ``avrec encode``; ``progress``: progress bars; ``log``: gets a line on
      what the media gave and what could not be read). ``modalities``: which media are read
      (the videos' texts come with ``video``).

    Use :func:`content_vectors` for one matrix to measure content distance with.
    """
    media_vectors: dict[str, np.ndarray] = {}
    if media:
        from avrec.encoders.understand import cached_media, encode_catalog

        found = cached_media(dataset.items, dataset.root, modalities)
        todo = [m for m, n in found.missing.items() if n]
        if encode_missing and todo:
            encode_catalog(dataset, todo, dataset.root, progress=progress)
            found = cached_media(dataset.items, dataset.root, modalities)
        if log is not None:
            _log_media(found, encode_missing, log)
        media_vectors = found.vectors
        texts = {k: v for k, v in found.texts.items() if any(v)}
        if texts:
            dataset = Dataset(
                dataset.items.assign(**texts),
                dataset.interactions,
                dataset.users,
                dataset.root,
                dataset.name,
                dataset.meta,
            )
    genres = genre_matrix(dataset.items)
    out = {"genres": genres, **media_vectors}
    if text_encoder is None:
        return dataset, out
    from avrec.encoders.pipeline import encode_texts_cached

    strings = item_texts(dataset)
    has_text = np.array([bool(t.strip()) for t in strings])
    vectors: np.ndarray = np.zeros((len(strings), 0), dtype=np.float32)
    if has_text.any():
        enc = encode_texts_cached(
            [t for t, h in zip(strings, has_text, strict=True) if h], text_encoder
        )
        vectors = np.zeros((len(strings), enc.shape[1]), dtype=np.float32)
        vectors[has_text] = enc
    norms = np.linalg.norm(vectors, axis=1, keepdims=True) if vectors.size else None
    if norms is not None:
        vectors = vectors / np.where(norms > 0, norms, 1.0)
    out["text"] = vectors.astype(np.float32)
    out["has_text"] = has_text.astype(np.float32)[:, None]
    return dataset, out


def _log_media(found, encoded: bool, log: Callable[[str], None]) -> None:
    for name, values in found.texts.items():
        if any(values):
            log(
                f"media: {name.replace('_', ' ')} of {sum(map(bool, values)):,} videos "
                "joins their text"
            )
    for modality, mat in found.vectors.items():
        log(f"media: {modality} vectors of {int((abs(mat).sum(axis=1) > 0).sum()):,} items")
    for modality, n in found.missing.items():
        if n:
            log(
                f"note: {n:,} items' {modality} files could not be encoded (`avrec ingest` then "
                "`avrec encode` records why)"
                if encoded
                else f"note: {n:,} items' {modality} files are not encoded yet, so they are "
                "not read"
            )


def content_vectors(features: dict[str, np.ndarray]) -> np.ndarray:
    """One L2-normalised content matrix for distances: the text vector where the item has
    text, else its genre one-hot, as two blocks so that a text item and a genre-only item are
    compared on nothing they do not share (cosine 0 between the blocks)."""
    genres = features["genres"]
    text = features.get("text")
    if text is None or text.shape[1] == 0:
        return genres
    has = features["has_text"][:, 0] > 0
    out = np.zeros((len(genres), text.shape[1] + genres.shape[1]), dtype=np.float32)
    out[has, : text.shape[1]] = text[has]
    out[~has, text.shape[1] :] = genres[~has]
    return out
