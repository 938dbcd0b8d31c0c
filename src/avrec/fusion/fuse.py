"""Fusing modality vectors into one item vector, with missing modalities handled.

Each modality keeps its own block (the spaces differ: MiniLM/e5 text, EfficientNet images,
YAMNet sound), scaled by ``sqrt(w_m / W_item)`` where ``W_item`` is the total weight of the
modalities *present for that item*; missing blocks are zero. So every item with at least one
modality has a unit vector, and the dot product of two items is the weighted mean of their
per-modality cosines over the modalities they both have, with the weights renormalised per item
(an item missing its poster is not pushed away from everything; it is compared on what it has).
Items with no modality at all get a zero vector. A learned fusion comes with the matching models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

DEFAULT_WEIGHTS = {"text": 1.0, "image": 0.5, "video": 0.5, "audio": 0.5}


@dataclass
class FusionConfig:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))


@dataclass
class Fused:
    vectors: np.ndarray  # [n, sum of dims], rows unit length (zero where nothing is present)
    blocks: dict[str, slice]  # where each modality sits in the fused vector
    present: np.ndarray  # [n, modalities] bool, in ``blocks`` order


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


def fuse(
    vectors: Mapping[str, np.ndarray],
    present: Mapping[str, np.ndarray] | None = None,
    config: FusionConfig | None = None,
) -> Fused:
    """One vector per item from ``{modality: [n, d_m]}``. ``present`` (bool ``[n]`` per
    modality) marks which rows hold a real vector; by default a non-zero row is present."""
    config = config or FusionConfig()
    names = [m for m in vectors if config.weights.get(m, 1.0) > 0]
    if not names:
        raise ValueError("nothing to fuse: no modality with a positive weight")
    n = len(next(iter(vectors.values())))
    mats, masks = [], []
    for m in names:
        mat = np.asarray(vectors[m], dtype=np.float32)
        if mat.shape[0] != n:
            raise ValueError(f"modality {m!r} has {mat.shape[0]} rows, expected {n}")
        mask = (
            np.asarray(present[m], dtype=bool)
            if present is not None and m in present
            else np.linalg.norm(mat, axis=1) > 0
        )
        mats.append(_unit(mat) * mask[:, None])
        masks.append(mask & (np.linalg.norm(mat, axis=1) > 0))
    mask = np.stack(masks, axis=1)
    w = np.array([config.weights.get(m, 1.0) for m in names], dtype=np.float32)
    total = (mask * w).sum(axis=1, keepdims=True)
    scale = (
        np.sqrt(np.divide(w, total, out=np.zeros_like(mask, dtype=np.float32), where=total > 0))
        * mask
    )
    blocks, start = {}, 0
    for m, mat in zip(names, mats, strict=True):
        blocks[m] = slice(start, start + mat.shape[1])
        start += mat.shape[1]
    fused = np.hstack([mat * scale[:, [k]] for k, mat in enumerate(mats)]).astype(np.float32)
    return Fused(fused, blocks, mask)


def fuse_understanding(understanding, config: FusionConfig | None = None) -> Fused:
    """Fuse a :class:`avrec.encoders.understand.CatalogUnderstanding`."""
    return fuse(
        {m: r.vectors for m, r in understanding.results.items()},
        {m: r.present for m, r in understanding.results.items()},
        config,
    )
