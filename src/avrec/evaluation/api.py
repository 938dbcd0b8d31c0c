"""One call from a dataset to a written report (what ``avrec evaluate`` runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from avrec.data.dataset import Dataset
from avrec.evaluation.report import tradeoff_points, write_report
from avrec.evaluation.runner import RANKING_BASELINES, RATING_BASELINES, evaluate


def with_baselines(models: Sequence[str], protocol: str) -> list[str]:
    """The requested models plus the baselines every report carries, baselines first."""
    base = RATING_BASELINES if protocol == "kfold" else RANKING_BASELINES
    return list(dict.fromkeys([*base, *models]))


def evaluate_to_report(dataset: Dataset, protocol: str, models: Sequence[str], ks: Sequence[int],
                       seeds: Sequence[int], report_dir: Path, *, configs: dict | None = None,
                       text_features: bool = True, log: Callable[[str], None] = print) -> dict:
    from avrec.fusion.features import content_vectors

    vectors = content_vectors(dataset.items, text=text_features)
    runs = evaluate(dataset, protocol, with_baselines(models, protocol), ks, seeds, configs,
                    item_vectors=vectors, log=log)
    item_ids = dataset.items["item_id"]
    counts = dataset.interactions["item_id"].value_counts()
    popularity = item_ids.map(counts).fillna(0).to_numpy(float)
    tradeoff = None if protocol == "kfold" else tradeoff_points(runs, min(ks), vectors)
    return write_report(runs, report_dir, dataset=dataset.name, protocol=protocol, ks=ks,
                        item_vectors=vectors, item_popularity=np.asarray(popularity),
                        tradeoff=tradeoff)
