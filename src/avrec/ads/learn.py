"""Learning the person × context engagement model from a dataset's time-ordered histories.

Each person's history is cut (``cut[u]`` items, e.g. the first 75%); a recommender is fitted
on the parts before the cuts; after each cut, at up to ``max_steps`` positions, the context is
the item just watched and an ad is engaged with when the person watches the item it promotes
later (:func:`avrec.ads.engagement.trailer_examples`). The logistic model learns from those
steps' signals. Fit it on training data only: the recommender that scores the steps never saw
what came after the cuts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from avrec.ads.catalog import Ad, encode_ads
from avrec.ads.engagement import EngagementModel, trailer_examples
from avrec.ads.media import catalog_visuals, encode_ad_media
from avrec.ads.scoring import FEATURES, AdScorer
from avrec.data import Dataset
from avrec.errors import AvrecError
from avrec.models.base import Recommender


def time_ordered(interactions: pd.DataFrame) -> dict[str, list[str]]:
    """Each person's items, oldest first (ties in file order)."""
    frame = interactions.assign(_row=np.arange(len(interactions)))
    frame = frame.assign(user_id=frame["user_id"].astype(str), item_id=frame["item_id"].astype(str))
    frame = frame.sort_values(["user_id", "timestamp", "_row"], kind="stable")
    return {u: g["item_id"].tolist() for u, g in frame.groupby("user_id", sort=True)}


def fit_prefix_model(
    dataset: Dataset, histories: dict[str, list[str]], cut: dict[str, int], name: str, seed: int
) -> Recommender:
    """The recommender ``name`` fitted on each history's first ``cut[u]`` items (the
    dataset's own rows, ratings included)."""
    from avrec.fusion.features import item_features
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model

    keep = {(u, i) for u, hist in histories.items() for i in hist[: cut.get(u, 0)]}
    inter = dataset.interactions
    pairs = zip(inter["user_id"].astype(str), inter["item_id"].astype(str), strict=True)
    mask = np.fromiter((p in keep for p in pairs), dtype=bool, count=len(inter))
    train = dataset.with_interactions(inter[mask].reset_index(drop=True))
    config = {"seed": seed, "query_encoder": None} if name == "hybrid" else {}
    return create_model(name, config).fit(TrainData.from_dataset(train, item_features(train)))


def _in_model_order(model: Recommender, items: pd.DataFrame) -> pd.DataFrame:
    vocab = model.fitted_parts()[1]
    frame = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id", drop=False)
    return frame.loc[[str(i) for i in vocab.ids]].reset_index(drop=True)


def catalog_vectors(model: Recommender, items: pd.DataFrame) -> np.ndarray:
    """The catalog's text vectors in the model's item order (the ads' encoder)."""
    from avrec.encoders.pipeline import encode_item_texts

    return encode_item_texts(_in_model_order(model, items))


def ad_scorer(
    model: Recommender,
    ads: Sequence[Ad],
    items: pd.DataFrame,
    root: Path | None,
    *,
    encode_missing: bool = False,
    log: Callable[[str], None] | None = None,
) -> AdScorer:
    """The scorer of ``ads`` against ``model``'s catalog ``items`` (media paths relative to
    ``root``): text vectors of both, and visual vectors where the ads have pictures (the
    catalog's from the encoders' cache; ``encode_missing``: encode the ones not there yet).
    ``log`` gets a line on catalog media that could not be read."""
    ad_visuals = encode_ad_media(ads)
    item_visuals = None
    if ad_visuals.any():
        item_visuals, missing = catalog_visuals(
            _in_model_order(model, items), root, encode_missing=encode_missing
        )
        if missing and log is not None:
            log(
                f"note: {missing:,} catalog items' images or videos are not encoded yet "
                "(`avrec encode`), so ads are not compared with how those look"
            )
    return AdScorer(
        model,
        ads,
        catalog_vectors(model, items),
        encode_ads(list(ads)),
        item_visuals=item_visuals,
        ad_visuals=ad_visuals,
    )


def step_signals(
    scorer: AdScorer,
    histories: dict[str, list[str]],
    users: Sequence[str],
    steps: Sequence[tuple[int, int, list[int]]],
) -> np.ndarray:
    """``[n_steps, n_ads, len(FEATURES)]`` for trailer steps ``(user index, t, labels)``: the
    person's history up to and including ``t``, the item at ``t`` as the context."""
    hist = [histories[users[u]][: t + 1] for u, t, _ in steps]
    return scorer.features([users[u] for u, _, _ in steps], hist, [h[-1] for h in hist])


def engagement_examples(
    dataset: Dataset,
    ads: Sequence[Ad],
    histories: dict[str, list[str]] | None = None,
    *,
    model: str = "ease",
    cut_share: float = 0.75,
    max_steps: int = 10,
    seed: int = 0,
    encode_missing: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(``[n, len(FEATURES)]`` signals, 0/1 engaged) of the trailer steps after each
    history's cut (default histories: the dataset's, time-ordered), for ``ads``, which must
    promote catalog items (``item_id``). The catalog's pictures come from the encoders' cache,
    the missing ones encoded first (``encode_missing``)."""
    promoted = [ad.item_id for ad in ads]
    catalog = set(dataset.items["item_id"].astype(str))
    if any(p is None or p not in catalog for p in promoted):
        raise AvrecError(
            "learning engagement needs ads that each promote an item of the dataset's catalog "
            "(item_id): a later watch of it is the engagement"
        )
    histories = histories if histories is not None else time_ordered(dataset.interactions)
    users = sorted(u for u, h in histories.items() if len(h) >= 4)
    cut = {u: int(len(histories[u]) * cut_share) for u in users}
    recommender = fit_prefix_model(dataset, histories, cut, model, seed)
    steps = trailer_examples(
        [histories[u] for u in users],
        [str(p) for p in promoted],
        [cut[u] for u in users],
        max_steps,
        seed,
    )
    if not steps:
        raise AvrecError("no person watches an advertised item after their history's cut")
    scorer = ad_scorer(recommender, ads, dataset.items, dataset.root, encode_missing=encode_missing)
    x = step_signals(scorer, histories, users, steps)
    y = np.array([s[2] for s in steps])
    ok = y >= 0
    return x[ok], y[ok]


def fit_engagement(
    dataset: Dataset,
    ads: Sequence[Ad],
    histories: dict[str, list[str]] | None = None,
    *,
    model: str = "ease",
    cut_share: float = 0.75,
    max_steps: int = 10,
    features: tuple[str, ...] = FEATURES,
    seed: int = 0,
) -> EngagementModel:
    """The engagement model learned from :func:`engagement_examples`."""
    x, y = engagement_examples(
        dataset,
        ads,
        histories,
        model=model,
        cut_share=cut_share,
        max_steps=max_steps,
        seed=seed,
    )
    return EngagementModel(features=features).fit(x, y)
