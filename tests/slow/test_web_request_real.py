"""A request with a history in the web page, on real data: the ml-latest-small films that at
least 20 people rated, the default model (hybrid; English request encoder, so the catalog
encodes in seconds) and the service, driven by a real headless Chromium. A new visitor likes
four science-fiction films, then types "comedy": every film listed is a comedy, the
comedies are ones that fans of those films liked (by the ratings: far more of the fans liked
them than the comedies the request alone gives, and than the average comedy), the scores
shown differ, and the variety slider is there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_path
from tests.integration.service_fixtures import CHROMIUM, launch_chromium, serving

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MIN_RATINGS = 20
#: item id -> what to type in the catalog's title filter to find it
SCI_FI = {
    "2571": "Matrix, The",
    "260": "Star Wars: Episode IV",
    "1214": "Alien (1979)",
    "589": "Terminator 2",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from avrec.data import Dataset
    from avrec.data.loaders import load_dataset
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model
    from avrec.service.app import create_app
    from avrec.service.settings import ServiceSettings
    from avrec.storage.db import get_engine
    from avrec.storage.ingest import ingest

    full = load_dataset(shared_path("ready", "ml-latest-small"))
    counts = full.interactions["item_id"].value_counts()
    kept = set(counts[counts >= MIN_RATINGS].index)
    ds = Dataset(
        full.items[full.items["item_id"].isin(kept)].reset_index(drop=True),
        full.interactions[full.interactions["item_id"].isin(kept)].reset_index(drop=True),
        name="ml-latest-small-20",
    )
    tmp = tmp_path_factory.mktemp("webreq")
    url = f"sqlite:///{tmp / 'service.db'}"
    ingest(ds, get_engine(url))
    model = create_model("hybrid", {"content": {"query_encoder": "text-en"}})
    model.fit(TrainData.from_dataset(ds)).save(tmp / "model")
    app = create_app(ServiceSettings(model_dir=tmp / "model", database_url=url, secret="webreq"))
    with serving(app) as base:
        yield base, ds


def fans_liked(ds) -> pd.Series:
    """Per item, the share of the fans (people who rated at least three of the four films 4 or
    more) who rated it 4 or more."""
    r = ds.interactions
    good = r[r["rating"] >= 4]
    per_user = good[good["item_id"].isin(SCI_FI)].groupby("user_id").size()
    fans = set(per_user[per_user >= 3].index)
    assert len(fans) >= 50, len(fans)
    liked = good[good["user_id"].isin(fans)]["item_id"].value_counts() / len(fans)
    return liked.reindex(ds.items["item_id"]).fillna(0.0)


def test_a_request_keeps_the_taste_of_the_history(demo):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian chromium is not installed here ({CHROMIUM})")
    from playwright.sync_api import sync_playwright

    base, ds = demo
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base)
        page.wait_for_selector(".card")
        assert page.get_attribute("#diversity", "type") == "range"  # the variety slider
        for n, (item, title) in enumerate(SCI_FI.items(), start=1):
            page.fill("#filter", title)
            page.click("#browse button")
            page.click(f'.card[data-item="{item}"] button.fav')
            page.wait_for_function(
                f"() => document.querySelector('#round').textContent.includes('round {n}')"
            )
        page.fill("#query", "comedy")
        page.click("#ask button")
        page.wait_for_function(
            "() => document.querySelector('#round').textContent.includes('round 5')"
        )
        listed = page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")
        genres = page.eval_on_selector_all("#recs li .muted", "els => els.map(e => e.textContent)")
        scores = page.eval_on_selector_all("#recs li .score", "els => els.map(e => e.textContent)")
        explained = page.inner_text("#recs li .expl")
        # the same request without a history, as the page asks it for a visitor with no likes
        alone = page.request.post(base + "api/recommendations", data={"query": "comedy", "k": 10})
        words_only = [r["item_id"] for r in alone.json()["items"]]
        browser.close()
    assert not errors, errors
    assert len(listed) == 10 and not set(listed) & set(SCI_FI)
    assert all("Comedy" in g for g in genres), list(zip(listed, genres, strict=True))
    assert "comedy" in explained
    values = [float(s) for s in scores]
    assert values == sorted(values, reverse=True) and len(set(values)) >= 5, values
    # the history changes the answer toward what the fans liked
    share = fans_liked(ds)
    comedies = ds.items["genres"].fillna("").str.contains("Comedy").to_numpy()
    with_taste, request_alone = share[listed].mean(), share[words_only].mean()
    every_comedy = float(np.mean(share.to_numpy()[comedies]))
    assert with_taste >= 1.5 * request_alone, (with_taste, request_alone)
    assert with_taste >= 3 * every_comedy, (with_taste, every_comedy)
