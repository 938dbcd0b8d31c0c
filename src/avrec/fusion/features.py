"""Item feature matrices aligned with a catalog: genre/tag one-hot (always available) and the
pretrained text vectors (when the text encoder is installed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from avrec.data.dataset import split_multi


def genre_vocabulary(items: pd.DataFrame, column: str = "genres") -> list[str]:
    """The sorted distinct ``|``-separated values of ``column`` (the columns of :func:`genre_matrix`)."""
    if column not in items.columns:
        return []
    return sorted({g for v in items[column] for g in split_multi(v)})


def genre_matrix(items: pd.DataFrame, column: str = "genres",
                 vocab: list[str] | None = None) -> np.ndarray:
    """One-hot of ``|``-separated values, rows L2-normalised (zero rows for items without).
    ``vocab`` fixes the columns (e.g. the vocabulary a model was trained with; values outside
    it are ignored); by default it is :func:`genre_vocabulary` of ``items``."""
    vocab = genre_vocabulary(items, column) if vocab is None else list(vocab)
    values = [split_multi(v) for v in items[column]] if column in items.columns else [[]] * len(items)
    index = {g: n for n, g in enumerate(vocab)}
    out = np.zeros((len(items), max(len(vocab), 1)), dtype=np.float32)
    for r, row in enumerate(values):
        for g in row:
            if g in index:
                out[r, index[g]] = 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def content_vectors(items: pd.DataFrame, text: bool = True) -> np.ndarray:
    """The catalog's content vectors: pretrained text vectors when ``text`` (cached by content
    hash), else genre one-hot. Content only: nothing here ever sees interactions."""
    if not text:
        return genre_matrix(items)
    from avrec.encoders.pipeline import encode_item_texts

    return encode_item_texts(items, "text-en")
