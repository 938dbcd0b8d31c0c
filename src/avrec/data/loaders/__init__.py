"""Loaders: the dataset-folder format (CSV, JSONL, Parquet) and the original MovieLens layouts."""

from avrec.data.loaders.detect import FORMATS, detect_format, load_dataset

__all__ = ["FORMATS", "detect_format", "load_dataset"]
