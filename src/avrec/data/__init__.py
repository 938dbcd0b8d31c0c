"""Dataset format, loaders, validation, splits and ID vocabularies."""

from avrec.data.dataset import Dataset

__all__ = ["Dataset"]
