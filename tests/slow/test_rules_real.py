"""Business rules on real MovieLens 100K through the path of ``avrec recommend --rules``: a cap
of 1 per director in the top 10 holds in every user's list, the lists stay full, and a pin
and a boost show in the explanations."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import shared_path

pytestmark = pytest.mark.slow

RULES = """
rules:
  - name: one-per-director
    cap: {field: director, max: 1, top: 10}
  - name: new-releases
    boost: {match: {year: {min: 1998}}, weight: 0.5}
  - name: feature
    pin: {item: "1682", position: 4}
"""


def test_a_cap_of_one_per_director_holds_in_every_list():
    from avrec.data.loaders import load_dataset
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model
    from avrec.models.requests import Request
    from avrec.rerank.apply import RerankOptions
    from avrec.rerank.requests import rerank_requests
    from avrec.rerank.rules import cap_violations, compile_rules, parse_rules

    dataset = load_dataset(shared_path("ready", "ml-100k"))
    model = create_model("ease").fit(TrainData.from_dataset(dataset))
    rules = compile_rules(parse_rules(RULES), model.catalog)
    users = [str(u) for u in model.fitted_parts()[0].ids]
    requests = [Request(user_id=u) for u in users]
    out = rerank_requests(model, requests, [RerankOptions()] * len(users), 10, True, rules)
    index = {i: n for n, i in enumerate(model.catalog["item_id"])}
    inter = dataset.interactions
    seen = set(inter.loc[inter["item_id"] == "1682", "user_id"])
    assert len(out) == 943
    for rec in out:
        items = [index[i] for i in rec["items"]]
        assert len(items) == 10 and cap_violations(rules, items) == []
        groups = [g for i in items for g in rules.caps[0].groups[i]]
        assert max(Counter(groups).values()) == 1
        if rec["user_id"] in seen:  # a pin never brings back what the person has seen
            assert "1682" not in rec["items"]
        else:
            assert rec["items"].index("1682") == 3
    assert any("boosted by rule 'new-releases'" in e for rec in out for e in rec["explanations"])
    assert any(
        "moved up by rule 'one-per-director'" in e for rec in out for e in rec["explanations"]
    )
