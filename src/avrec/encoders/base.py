"""The encoder contract: ``encode(batch) -> float32 [n, d]``, rows L2-normalised; ``name`` and
``version`` key the embedding cache."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class Encoder(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    modality: ClassVar[str]
    dim: ClassVar[int]

    @abstractmethod
    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        """float32 ``[len(batch), dim]``, each row of unit length (zero rows only for empty
        input)."""

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"
