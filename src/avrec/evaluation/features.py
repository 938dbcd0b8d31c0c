"""How item features are built for a dataset -- one function, reused by evaluation and models.

:func:`item_features` reads the catalog (``dataset.items``) only, never interactions, so the
features cannot carry test interactions into training. Text vectors come from the encoders'
content-hash cache (``avrec.encoders.pipeline.encode_texts_cached`` over
``avrec.encoders.itemtext.item_text``); the cache maps a hash of an item's text to its vector,
so a model can only look up vectors for texts it already holds.
"""

from __future__ import annotations

import numpy as np

from avrec.data.dataset import Dataset
from avrec.fusion.features import genre_matrix


def item_texts(dataset: Dataset) -> list[str]:
    """One text per catalog item, in ``dataset.items`` order ("" where the item has none)."""
    from avrec.encoders.itemtext import item_text

    return [item_text(row) for row in dataset.items.to_dict("records")]


def item_features(dataset: Dataset, *, text_encoder: str | None = "text-en",
                  media: bool = False) -> dict[str, np.ndarray]:
    """Feature matrices aligned with ``dataset.items`` (the ``item_features`` of ``TrainData``).

    - ``"genres"``: genre one-hot, L2-normalised rows (zero rows for items without genres);
    - ``"text"`` (when ``text_encoder`` is set): pretrained text vectors of :func:`item_texts`,
      L2-normalised; items without any text get a zero row (and ``"has_text"`` = 0), and
      :func:`content_vectors` falls back to their genre one-hot;
    - ``"has_text"``: ``[n_items, 1]`` 1.0 where the item has text.

    - with ``media``: ``"image"``, ``"video"``, ``"audio"`` vectors that ``avrec encode`` has
      cached for the catalog's files (:func:`avrec.encoders.understand.cached_media`, no model
      work; zero rows where none), and the videos' on-screen text and transcripts in the text
      (as ``avrec train`` gives them to the models).

    Use :func:`content_vectors` for one matrix to measure content distance with.
    """
    media_vectors: dict[str, np.ndarray] = {}
    if media:
        from avrec.encoders.understand import cached_media

        found = cached_media(dataset.items, dataset.root)
        media_vectors = found.vectors
        texts = {k: v for k, v in found.texts.items() if any(v)}
        if texts:
            dataset = Dataset(dataset.items.assign(**texts), dataset.interactions, dataset.users,
                              dataset.root, dataset.name, dataset.meta)
    genres = genre_matrix(dataset.items)
    out = {"genres": genres, **media_vectors}
    if text_encoder is None:
        return out
    from avrec.encoders.pipeline import encode_texts_cached

    texts = item_texts(dataset)
    has_text = np.array([bool(t.strip()) for t in texts])
    vectors = np.zeros((len(texts), 0), dtype=np.float32)
    if has_text.any():
        enc = encode_texts_cached([t for t, h in zip(texts, has_text, strict=True) if h], text_encoder)
        vectors = np.zeros((len(texts), enc.shape[1]), dtype=np.float32)
        vectors[has_text] = enc
    norms = np.linalg.norm(vectors, axis=1, keepdims=True) if vectors.size else None
    if norms is not None:
        vectors = vectors / np.where(norms > 0, norms, 1.0)
    out["text"] = vectors.astype(np.float32)
    out["has_text"] = has_text.astype(np.float32)[:, None]
    return out


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
    out[~has, text.shape[1]:] = genres[~has]
    return out
