"""One call from a dataset to a written report (what ``avrec evaluate`` runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avrec.data.dataset import Dataset
from avrec.evaluation.report import tradeoff_points, write_report
from avrec.evaluation.runner import RANKING_BASELINES, RATING_BASELINES, evaluate
from avrec.rerank.rules import Document

if TYPE_CHECKING:
    from distributed import Client


def with_baselines(models: Sequence[str], protocol: str) -> list[str]:
    """The requested models plus the baselines every report carries, baselines first."""
    base = (*RANKING_BASELINES, *RATING_BASELINES) if protocol == "kfold" else RANKING_BASELINES
    return list(dict.fromkeys([*base, *models]))


def evaluate_to_report(
    dataset: Dataset,
    protocol: str,
    models: Sequence[str],
    ks: Sequence[int],
    seeds: Sequence[int],
    report_dir: Path,
    *,
    configs: dict | None = None,
    text_features: bool = True,
    media: bool = True,
    log: Callable[[str], None] = print,
    client: Client | None = None,
    rules: Document | None = None,
) -> dict:
    """Featurize the catalog, run every model (with the baselines) through ``protocol`` and
    write the report to ``report_dir``; ``client``: run the fits as Dask tasks
    (:func:`avrec.evaluation.runner.evaluate`)."""
    from avrec.fusion.features import content_vectors, featurize

    dataset, features = featurize(
        dataset,
        text_encoder="text-en" if text_features else None,
        media=media,
        encode_missing=media,
        progress=True,
        log=log,
    )
    vectors = content_vectors(features)
    runs = evaluate(
        dataset,
        protocol,
        with_baselines(models, protocol),
        ks,
        seeds,
        configs,
        item_features=features,
        log=log,
        client=client,
        rules=rules,
    )
    item_ids = dataset.items["item_id"]
    counts = dataset.interactions["item_id"].value_counts()
    popularity = item_ids.map(counts).fillna(0).to_numpy(float)
    tradeoff = tradeoff_points(runs, min(ks), vectors, features.get("genres"))
    return write_report(
        runs,
        report_dir,
        dataset=dataset.name,
        protocol=protocol,
        ks=ks,
        item_vectors=vectors,
        item_popularity=np.asarray(popularity),
        tradeoff=tradeoff,
    )
