"""Ads: the ads.csv loader's validation, eligibility (flight, targeting, brand safety, caps,
budget, pacing), the engagement model and the selector on a small fitted model."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from avrec.ads.catalog import Ad, AdCatalogError, ads_frame, load_ads
from avrec.ads.eligibility import (
    Context,
    MemoryLedger,
    Pacing,
    Person,
    exclusion,
)
from avrec.ads.engagement import (
    EngagementFileError,
    EngagementModel,
    default_engagement,
    trailer_examples,
)
from avrec.ads.scoring import FEATURES
from avrec.errors import AvrecError

HEADER = "ad_id,advertiser,text,bid,daily_budget,frequency_cap,genres,exclude,start,end,min_age"
NOON = dt.datetime(2026, 12, 7, 12, 0)


def write(tmp_path, *lines: str, header: str = HEADER):
    path = tmp_path / "ads.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_loader_reads_lists_dates_and_numbers(tmp_path):
    path = write(
        tmp_path,
        "a1,Acme,Calm piano album,0.5,20,3,Music|Calm,Horror,2026-12-01,2026-12-31,18",
        'a2,Beta,"Fast cars, loud engines",1.25,10,1,,,,,',
    )
    a1, a2 = load_ads(path)
    assert a1.genres == {"music", "calm"} and a1.exclude == {"horror"}
    assert a1.start == dt.date(2026, 12, 1) and a1.min_age == 18 and a1.frequency_cap == 3
    assert a2.text == "Fast cars, loud engines" and a2.bid == 1.25 and not a2.genres
    assert list(ads_frame([a1])["genres"]) == ["calm|music"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("a1,Acme,text,-1,20,3,,,,,", "bid must be a number > 0"),
        ("a1,Acme,text,zero,20,3,,,,,", "bid: not a number"),
        ("a1,Acme,text,1,20,0,,,,,", "frequency_cap"),
        ("a1,Acme,text,1,20,1.5,,,,,", "frequency_cap must be a whole number"),
        ("a1,Acme,,1,20,1,,,,,", "text is empty"),
        ("a1,Acme,text,1,20,1,,,2026-13-01,,", "start must be a date"),
        ("a1,Acme,text,1,20,1,,,2026-12-10,2026-12-01,", "ends (2026-12-01) before it starts"),
        ("a1,Acme,text,1,inf,1,,,,,", "daily_budget must be a number > 0"),
        ("a1,Acme,text,1,20,1,,,,,abc", "min_age must be a whole number"),
        ("a1,Acme,text,1,20,1,,,,,,extra", "more fields than the header"),
    ],
)
def test_loader_names_the_line(tmp_path, line, says):
    path = write(tmp_path, "ok,Acme,fine,1,20,1,,,,,", line)
    with pytest.raises(AdCatalogError) as err:
        load_ads(path)
    assert isinstance(err.value, AvrecError)
    assert "ads.csv:3: " in str(err.value) and says in str(err.value)


def test_loader_header_duplicates_and_missing_file(tmp_path):
    with pytest.raises(AdCatalogError, match=r"missing column.*daily_budget"):
        load_ads(write(tmp_path, "a,b,c,1,1", header="ad_id,advertiser,text,bid,frequency_cap"))
    with pytest.raises(AdCatalogError, match=r"unknown column.*colour"):
        load_ads(write(tmp_path, "a,b,c,1,1,1,red", header=HEADER.rsplit(",", 5)[0] + ",colour"))
    with pytest.raises(AdCatalogError, match=r":3 \(column 'ad_id'\): ad_id 'a1' repeats line 2"):
        load_ads(write(tmp_path, "a1,A,t,1,2,1,,,,,", "a1,B,t,1,2,1,,,,,"))
    with pytest.raises(AdCatalogError, match="no ads"):
        load_ads(write(tmp_path))
    with pytest.raises(AdCatalogError, match="no such file"):
        load_ads(tmp_path / "absent.csv")


def ad(**kw) -> Ad:
    base = dict(ad_id="a", advertiser="Acme", text="t", bid=1.0, daily_budget=100.0)
    return Ad(**{**base, "frequency_cap": 2, **kw})


DRAMA = Context("f1", "movie", frozenset({"drama"}), frozenset({"director:x"}), "en")
ANYONE = Person("u1")


def why(a: Ad, context=DRAMA, person=ANYONE, now=NOON, shown=0, spent=0.0, pacing=None):
    return exclusion(a, context, person, now, shown, spent, pacing)[0]


def test_flight_targeting_and_brand_safety():
    assert why(ad()) is None
    assert why(ad(start=dt.date(2026, 12, 8))) == "flight"
    assert why(ad(end=dt.date(2026, 12, 6))) == "flight"
    assert why(ad(start=NOON.date(), end=NOON.date())) is None  # inclusive
    assert why(ad(genres=frozenset({"comedy"}))) == "targeting"
    assert why(ad(genres=frozenset({"comedy", "drama"}))) is None
    assert why(ad(kinds=frozenset({"music"}))) == "targeting"
    assert why(ad(languages=frozenset({"zh"}))) == "targeting"
    assert why(ad(min_age=18)) == "targeting"  # age unknown: not targeted
    assert why(ad(min_age=18), person=Person("u1", age=30)) is None
    assert why(ad(max_age=17), person=Person("u1", age=30)) == "targeting"
    assert why(ad(locales=frozenset({"fr"})), person=Person("u", locale="fr")) is None
    assert why(ad(exclude=frozenset({"drama"}))) == "brand_safety"
    assert why(ad(exclude=frozenset({"director:x"}))) == "brand_safety"  # a tag too
    assert why(ad(exclude=frozenset({"horror"}))) is None


def test_seen_caps_and_budget():
    assert why(ad(item_id="f9"), person=Person("u", seen=frozenset({"f9"}))) == "already_watched"
    assert why(ad(item_id="f1")) == "already_watched"  # the video being watched
    assert why(ad(frequency_cap=2), shown=1) is None
    assert why(ad(frequency_cap=2), shown=2) == "frequency_cap"
    assert why(ad(daily_budget=10.0, bid=1.0), spent=9.0) is None
    assert why(ad(daily_budget=10.0, bid=1.0), spent=9.5) == "budget"  # a click would overspend


def test_pacing_throttles_spend_ahead_of_the_day_and_repeats():
    pacing = Pacing(seed=3, margin=0.05, lead=0.0)
    a = ad(daily_budget=1000.0, bid=1.0)
    assert pacing.rate(a, 400.0, NOON) == 1.0  # behind: 40% spent at half the day
    assert pacing.rate(a, 525.0, NOON) == pytest.approx(0.5)
    assert pacing.rate(a, 560.0, NOON) == 0.0
    late = NOON.replace(hour=23, minute=59)
    assert pacing.rate(a, 990.0, late) == 1.0
    draws = [pacing.draw("a", f"u{n}", NOON) for n in range(2000)]
    assert draws == [pacing.draw("a", f"u{n}", NOON) for n in range(2000)]
    assert 0.45 < np.mean(np.array(draws) < 0.5) < 0.55
    # half the requests take part at rate 0.5
    taking = [
        exclusion(a, DRAMA, Person(f"u{n}"), NOON, 0, 525.0, pacing)[0] is None for n in range(2000)
    ]
    assert 0.45 < np.mean(taking) < 0.55
    assert Pacing(lead=0.15).rate(a, 560.0, NOON) == 1.0  # the schedule's lead allows it


def test_memory_ledger_counts_impressions_and_charges_clicks():
    ledger, a, day = MemoryLedger(), ad(bid=2.5), NOON.date()
    assert ledger.record("impression", "u1", a, day) == 0.0
    assert ledger.record("click", "u1", a, day) == 2.5
    ledger.record("skip", "u1", a, day)
    assert ledger.shown("u1", day) == {"a": 1} and ledger.shown("u2", day) == {}
    assert ledger.spent(day) == {"a": 2.5}
    assert ledger.spent(day + dt.timedelta(days=1)) == {}


def test_engagement_learns_the_signal_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, len(FEATURES)))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 2)))).astype(float)
    model = EngagementModel().fit(x, y)
    assert model.coef_[0] == pytest.approx(1.5, abs=0.2)
    assert np.abs(model.coef_[1:]).max() < 0.2
    back = EngagementModel.load(model.save(tmp_path / "e.json"))
    assert np.allclose(back.predict(x[:5]), model.predict(x[:5]))
    only = EngagementModel(features=("context",)).fit(x, y)
    assert only.coef_.shape == (1,)
    with pytest.raises(ValueError, match="both outcomes"):
        EngagementModel().fit(x, np.zeros(4000))
    (tmp_path / "bad.json").write_text('{"features": ["person"], "coef": [1, 2]}')
    with pytest.raises(EngagementFileError, match="not an engagement model"):
        EngagementModel.load(tmp_path / "bad.json")
    with pytest.raises(EngagementFileError, match="no such"):
        EngagementModel.load(tmp_path / "absent.json")
    assert default_engagement().predict(np.zeros(len(FEATURES))) < 0.5


def test_trailer_examples_label_later_watches():
    hist = [["a", "x", "b", "y", "z"]]
    steps = trailer_examples(hist, ["b", "z", "q"], [1], max_steps=10)
    assert steps == [(0, 1, [1, 1, 0]), (0, 2, [-1, 1, 0]), (0, 3, [-1, 1, 0])]
    assert trailer_examples(hist, ["a"], [1], 10) == []  # no later watch: left out
    assert len(trailer_examples(hist, ["a"], [1], 10, keep_empty=True)) == 3


@pytest.fixture
def selector(synthetic_dataset):
    from avrec.ads.scoring import AdScorer
    from avrec.ads.select import AdSelector
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model

    model = create_model("ease").fit(TrainData.from_dataset(synthetic_dataset))
    n_items = len(model.fitted_parts()[1])
    # items' content: even items point one way, odd items the other (the two taste groups)
    item_vectors = np.zeros((n_items, 2), np.float32)
    item_vectors[0::2, 0] = item_vectors[1::2, 1] = 1.0
    ads = [
        ad(ad_id="even-ad", item_id="i4", bid=1.0),
        ad(ad_id="odd-ad", item_id="i5", bid=1.0),
        ad(ad_id="odd-rich", item_id="i7", bid=50.0, frequency_cap=1),
        ad(ad_id="no-item", bid=1.0),
    ]
    ad_vectors = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], np.float32)
    return AdSelector(ads, AdScorer(model, ads, item_vectors, ad_vectors), default_engagement())


def request(user: str, history: list[str], now=NOON):
    from avrec.ads.select import AdRequest

    return AdRequest(
        Person(user, seen=frozenset(history)), tuple(history), Context(history[-1]), now
    )


def test_selector_ranks_by_taste_times_bid_and_keeps_caps(selector):
    even_fan = request("u0", ["i0", "i2", "i6"])  # u0 is in the even group
    x = selector.features([even_fan])[0]
    assert x[0, 0] > x[1, 0]  # person: the even film over the odd one
    assert x[0, 2] > x[1, 2]  # content: like the even video being watched
    from avrec.ads.select import AdSelector

    same_bids = [dataclasses.replace(a, bid=1.0) for a in selector.ads]
    low_bids = AdSelector(same_bids, selector.scorer, selector.engagement)
    assert low_bids.choose(even_fan, x, MemoryLedger(), slots=1).ads[0]["ad_id"] == "even-ad"
    ledger = MemoryLedger()
    first = selector.choose(even_fan, x, ledger, slots=2)
    assert first.ads[0]["ad_id"] == "odd-rich"  # P × a 50× bid wins
    assert first.ads[0]["expected_value"] == pytest.approx(50 * first.ads[0]["p_engage"])
    assert first.ads[0]["reasons"] and first.eligible == 4
    ledger.record("impression", "u0", selector.ads[2], NOON.date())
    again = selector.choose(even_fan, x, ledger, slots=4)
    assert "odd-rich" not in [a["ad_id"] for a in again.ads]
    assert again.excluded == {"frequency_cap": 1}
    seen = request("u0", ["i0", "i4"])
    assert "even-ad" not in [a["ad_id"] for a in selector.select([seen], ledger, 4)[0].ads]


def test_visual_signal_only_where_both_have_a_picture(synthetic_dataset):
    from avrec.ads.media import with_media
    from avrec.ads.scoring import AdScorer
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model

    model = create_model("ease").fit(TrainData.from_dataset(synthetic_dataset))
    n_items = len(model.fitted_parts()[1])
    looks = np.zeros((n_items, 3), np.float32)
    looks[0, 0] = looks[1, 1] = 1.0  # i0 and i1 have pictures, the others none
    ads = [ad(ad_id="pic", item_id="i4"), ad(ad_id="none", item_id="i5")]
    ad_looks = np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 0.0]], np.float32)
    text = np.ones((n_items, 2), np.float32) / np.sqrt(2)
    scorer = AdScorer(model, ads, text, text[:2], item_visuals=looks, ad_visuals=ad_looks)
    x = scorer.features(["u0"] * 3, [["i0"], ["i1"], ["i2"]], ["i0", "i1", "i2"])
    visual, has = x[..., FEATURES.index("visual")], x[..., FEATURES.index("has_visual")]
    assert visual[:, 0].tolist() == pytest.approx([0.6, 0.8, 0.0])
    assert has.tolist() == [[1, 0], [1, 0], [0, 0]]
    assert not visual[:, 1].any()
    blind = AdScorer(model, ads, text, text[:2])  # no pictures anywhere: both columns 0
    assert not blind.features(["u0"], [["i0"]], ["i0"])[..., FEATURES.index("visual") :].any()
    with pytest.raises(ValueError, match="visual vectors"):
        AdScorer(model, ads, text, text[:2], item_visuals=looks[:3], ad_visuals=ad_looks)
    catalog = synthetic_dataset.items[["item_id", "title"]].iloc[:3]
    media = pd.DataFrame({"item_id": ["i2", "i0", "zz"], "image": ["b.png", "a.png", "c.png"]})
    merged = with_media(catalog, media)
    assert merged["item_id"].tolist() == ["i0", "i1", "i2"]
    assert merged["image"].tolist() == ["a.png", None, "b.png"]
