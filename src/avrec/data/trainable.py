"""Whether a dataset can train a recommender at all, checked before any model is fitted."""

from __future__ import annotations

from avrec.data.dataset import Dataset


def training_problem(dataset: Dataset) -> str | None:
    """What makes ``dataset`` unusable for training (None when it is usable): a model needs
    at least two catalog items to rank and at least one interaction (so one user with one)."""
    where = f"{dataset.name or 'the dataset'}"
    if dataset.n_items < 2:
        return (
            f"{where} has {dataset.n_items} item(s); a recommender ranks items, so it needs "
            "at least 2 in items.csv"
        )
    if dataset.n_interactions == 0:
        return (
            f"{where} has no interactions; add rows (user_id,item_id,...) to "
            "interactions.csv before training"
        )
    return None  # an interaction names a user and an item: both exist from here
