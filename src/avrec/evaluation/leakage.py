"""Leakage guards: test interactions never reach training.

A model sees a split's training part through three doors, and each is guarded here:

1. the :class:`~avrec.models.base.TrainData` it is fitted on -- :func:`guard_no_leakage`
   checks that no test (user, item) pair is in the split's training frame or in the matrix;
2. the dataset folder on disk (``TrainData.root``, which models use to open media files) --
   during an evaluation ``root`` points at a *training view*: a temporary folder holding the
   catalog and media (linked) and only the training interactions, so a model that re-reads
   ``interactions.csv`` (or MovieLens ``u.data`` / ``ratings.csv``) finds the training part;
3. the database (``AVREC_DATABASE_URL`` / the SQLite file in ``AVREC_HOME``), which may hold the
   whole ingested dataset -- during fit and scoring ``AVREC_DATABASE_URL`` points at a fresh,
   empty SQLite file.

The embedding cache is not a door: it maps a hash of an item's *content* to its vector, so a
lookup needs the text itself, and evaluation features are built from the catalog only
(:func:`avrec.fusion.features.item_features`), never from interactions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from avrec.data.dataset import INTERACTION_COLUMNS, Dataset
from avrec.evaluation.protocols import Split
from avrec.models.base import TrainData

#: files in a dataset folder that hold interactions (never linked into a training view)
INTERACTION_FILES = ("interactions", "ratings", "u.data", "ratings.dat", "tags")


class LeakageError(AssertionError):
    """A test interaction reached (or could reach) training."""


def guard_no_leakage(split: Split, data: TrainData) -> None:
    """Fail if a test (user, item) pair is in the split's training part or in the training
    matrix handed to the model, or a cold-items candidate has training interactions."""
    try:
        split.check_no_leakage()
    except AssertionError as exc:
        raise LeakageError(str(exc)) from None
    u = data.user_vocab.lookup(split.test["user_id"].tolist())
    i = data.item_vocab.lookup(split.test["item_id"].tolist())
    known = (u >= 0) & (i >= 0)
    if known.any() and np.asarray(data.matrix[u[known], i[known]]).ravel().any():
        raise LeakageError(f"{split.name}: test interactions reached the training matrix")
    if split.histories:
        held = set(split.histories)
        if held & set(data.interactions["user_id"]):
            raise LeakageError(f"{split.name}: held-out (cold) users have training interactions")


def _is_interaction_file(name: str) -> bool:
    stem = name.lower()
    return any(stem == f or stem.startswith(f + ".") for f in INTERACTION_FILES)


def training_view(dataset: Dataset, train: Dataset, folder: Path) -> Path:
    """A folder like ``dataset.root`` where the interactions are the training part only:
    every other entry is linked, interaction files are left out, and ``interactions.csv``
    holds ``train.interactions``."""
    folder.mkdir(parents=True, exist_ok=True)
    if dataset.root is not None and Path(dataset.root).is_dir():
        for entry in Path(dataset.root).iterdir():
            if not _is_interaction_file(entry.name):
                (folder / entry.name).symlink_to(entry.resolve())
    train.interactions[INTERACTION_COLUMNS].to_csv(folder / "interactions.csv", index=False)
    return folder


@contextlib.contextmanager
def isolated(dataset: Dataset, train: Dataset) -> Iterator[Path]:
    """While open: ``AVREC_DATABASE_URL`` is a fresh empty SQLite database, and the yielded
    path is a training view of the dataset folder (to use as ``TrainData.root``)."""
    tmp = Path(tempfile.mkdtemp(prefix="avrec-eval-"))
    saved = os.environ.get("AVREC_DATABASE_URL")
    os.environ["AVREC_DATABASE_URL"] = f"sqlite:///{tmp / 'isolated.db'}"
    try:
        yield training_view(dataset, train, tmp / "dataset")
    finally:
        if saved is None:
            os.environ.pop("AVREC_DATABASE_URL", None)
        else:
            os.environ["AVREC_DATABASE_URL"] = saved
        shutil.rmtree(tmp, ignore_errors=True)
