"""Catalog-level encoding with the cache: only content not seen before reaches a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from avrec.encoders.cache import EmbeddingCache, content_key
from avrec.encoders.itemtext import item_text
from avrec.encoders.registry import get_encoder


def encode_cached(
    payloads: Sequence[str],
    encoder_name: str,
    encode: Callable | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """Vectors for ``payloads`` (texts), computing only the ones missing from the cache."""
    encoder = get_encoder(encoder_name)
    encode = encode or encoder.encode
    cache = EmbeddingCache(encoder.key)
    keys = [content_key(p) for p in payloads]
    todo = sorted({k: i for i, k in enumerate(keys) if cache.get(k) is None}.values())
    steps = range(0, len(todo), batch_size)
    if progress and todo:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"encode {encoder_name}", unit="batch")
    for start in steps:
        chunk = todo[start : start + batch_size]
        vecs = encode([payloads[i] for i in chunk])
        cache.put_many([keys[i] for i in chunk], vecs)
    out = np.zeros((len(payloads), encoder.dim), dtype=np.float32)
    for n, key in enumerate(keys):
        out[n] = cache.get(key)
    return out


def encode_texts_cached(texts: Sequence[str], encoder_name: str = "text-en", **kw) -> np.ndarray:
    """Passage (catalog text) vectors, cached by (encoder, version, sha256 of the text)."""
    return encode_cached(list(texts), encoder_name, **kw)


QUERY_TAG = "\x00query\x00"  # cache-key prefix keeping query vectors apart from passage vectors


def encode_queries_cached(
    texts: Sequence[str], encoder_name: str = "text-multi", **kw
) -> np.ndarray:
    """Query vectors (E5's ``query:`` side; plain ``encode`` for encoders without one), cached."""
    encoder = get_encoder(encoder_name)
    encode_queries = getattr(encoder, "encode_queries", encoder.encode)
    tag = QUERY_TAG + getattr(encoder, "query_version", "") + "\x00"
    strip = len(tag)
    return encode_cached(
        [tag + t for t in texts],
        encoder_name,
        encode=lambda batch: encode_queries([t[strip:] for t in batch]),
        **kw,
    )


def encode_item_texts(items: pd.DataFrame, encoder_name: str = "text-en", **kw) -> np.ndarray:
    """Text vectors of a catalog, in row order (see :mod:`avrec.encoders.itemtext`)."""
    texts = [item_text(row) for row in items.to_dict("records")]
    return encode_cached(texts, encoder_name, **kw)
