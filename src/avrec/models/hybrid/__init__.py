"""The hybrid, avrec's default model, as a pipeline of parts (see :mod:`.model`)."""

from avrec.models.hybrid.config import HybridConfig
from avrec.models.hybrid.model import PEAK_BYTES_PER_CELL, Hybrid

__all__ = ["PEAK_BYTES_PER_CELL", "Hybrid", "HybridConfig"]
