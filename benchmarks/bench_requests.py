"""Benchmark: requests with and without taste. People's own MovieLens tags are the requests.
For every (person, film) of ml-latest-small that the person both rated and tagged, the rating
is held out, every film's ``tags`` field is blanked in the training copy (so no request finds
its answer written in the catalog), and the person asks with ``{user_id, query: tag}``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_requests.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
READY = SHARED / "ready" / "ml-latest-small"
TAGS = SHARED / "raw" / "ml-latest-small" / "tags.csv"


def tagged_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    """(user_id, item_id, tag): every tag a person put on a film they also rated, lower-cased,
    once per (person, film, tag)."""
    tags = pd.read_csv(TAGS, dtype=str, keep_default_na=False)
    tags = pd.DataFrame({"user_id": tags["userId"], "item_id": tags["movieId"], "tag": tags["tag"]})
    tags["tag"] = tags["tag"].str.strip().str.lower()
    tags = tags[tags["tag"] != ""]
    rated = interactions[["user_id", "item_id"]].astype(str).drop_duplicates()
    out = tags.merge(rated, on=["user_id", "item_id"])
    return out.drop_duplicates().sort_values(["user_id", "item_id", "tag"]).reset_index(drop=True)


def training_copy():
    """The training dataset (tagged pairs held out, tags blanked) and the tagged pairs."""
    from avrec.data import Dataset
    from avrec.data.loaders import load_dataset

    data = load_dataset(READY)
    inter = data.interactions
    pairs = tagged_pairs(inter)
    held = set(zip(pairs["user_id"], pairs["item_id"], strict=True))
    keys = zip(inter["user_id"].astype(str), inter["item_id"].astype(str), strict=True)
    keep = np.array([k not in held for k in keys])
    items = data.items.copy()
    items["tags"] = None
    return Dataset(items, inter[keep].reset_index(drop=True), name="ml-latest-small"), pairs


K = 10
#: the full list read for MRR (a hit below it counts 0)
DEPTH = 100
BOOTSTRAP = 1000
ZH = Path(__file__).resolve().parent / "data" / "tags_zh.json"


def per_request(ranked: list[list[str]], answers: list[str]) -> np.ndarray:
    """``[n, 3]``: hit@K, NDCG@K and reciprocal rank (within the top DEPTH) per request."""
    out = np.zeros((len(answers), 3))
    for n, (items, answer) in enumerate(zip(ranked, answers, strict=True)):
        if answer in items:
            rank = items.index(answer) + 1
            out[n] = (rank <= K, (rank <= K) / np.log2(rank + 1), 1.0 / rank)
    return out


def by_pair(values: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Mean of each pair's requests (a pair with several tags counts once)."""
    frame = pd.DataFrame(values).groupby(pair, sort=True).mean()
    return frame.to_numpy()


def bootstrap(
    pair_values: dict[str, np.ndarray], seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per row label, the means over ``BOOTSTRAP`` resamples of the pairs (the same resamples
    for every label, so ratios pair up); and the resampled indices."""
    n = len(next(iter(pair_values.values())))
    idx = np.random.default_rng(seed).integers(0, n, (BOOTSTRAP, n))
    return {k: v[idx].mean(axis=1) for k, v in pair_values.items()}, idx


def ci(samples: np.ndarray) -> str:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return f"[{lo:.3f}, {hi:.3f}]"


def recommend(model, users, queries) -> list[list[str]]:
    recs = model.recommend(users, DEPTH, queries=queries, explain=False)
    return recs.items


#: what a run with another request encoder than the default leaves out
UNMEASURED = """\
Not measured in this run: the default request encoder (`text-multi`) and so the Chinese
requests. The catalog's multilingual-e5 passage vectors (tags blanked) were not in the
embedding cache, and encoding them ran at about 95 s per 256 items on the shared machine
(about an hour); `python benchmarks/bench_requests.py` (default `--query-encoder text-multi`)
measures both once they are cached."""

#: how the learned blend got to its form (measured with this benchmark, text-en requests)
NOTES = """What was tried (this benchmark, `--query-encoder text-en`, 2026-12-07, on a shared,
heavily loaded 2-core machine). The fixed z-score blend (weight 0.7) is the row "both, fixed
blend 0.7". A first learned ranker took each list's top (candidates + history length) items
by request and by taste as candidates and read taste as a z-score and a gap to the top: HR@10
of both 0.102, *below* the fixed blend (0.122) and below its own words-only ranking (0.134):
for people with long histories (one person holds 1,414 of the requests) the candidates were
most of the catalog, unlike the simulated requests it learned from. Kept: candidates are the
top 100 *unseen* items by request and by taste (plus the history, masked later when seen items
are excluded), and taste enters as a z-score and a log rank (rank does not depend on the
score's scale, which differs between the VAE-blended taste at serving and the sub-model's taste
it learns from): both 0.149. Simulated requests: a tag of the hidden item half the time where
the training copy has tags (here it has none), else a description word or word pair (60%) or a
genre; titles and the names a description mentions are left out, since they give the answer
away. Added later (this run): a genre-match feature, the request encoder's similarity of the
request to the names of the item's genres (the best of its genres), so that a request naming a
genre ("comedy") keeps to it while taste orders the genre's films: both 0.149 -> 0.159 HR@10,
0.093 -> 0.098 NDCG@10, words 0.129 -> 0.131 (the previous run of this section, 2026-12-07
20:24 UTC). Not tried for lack of time: the VAE in the taste sub-model, more trees, other shares
of no-history requests."""


def _cell(point: float, samples: np.ndarray) -> str:
    return f"{point:.3f} {ci(samples)}"


def report(rows, pair_id, in_zh, fits, example, n_tags: int, encoder: str, seconds: float) -> str:
    """The section's text: every (model, request kind) with bootstrap intervals over pairs,
    the ratios the issue asks for, and the Chinese requests against the same English ones."""
    english = {f"{m}|{k}": by_pair(v, pair_id) for (m, k), v in rows.items() if "Chinese" not in k}
    chinese = {}
    for (m, k), v in rows.items():
        if "Chinese" in k:
            chinese[f"{m}|{k}"] = by_pair(v[in_zh], pair_id[in_zh])
        elif k in ("both", "words"):
            chinese[f"{m}|{k}, English"] = by_pair(v[in_zh], pair_id[in_zh])
    if not any("Chinese" in k for k in chinese):
        chinese = {}
    boot, _ = bootstrap(english)
    boot_zh = bootstrap(chinese)[0] if any("Chinese" in k for k in chinese) else {}
    table = []
    for label, v in english.items():
        m, k = label.split("|")
        point = v.mean(axis=0)
        cells = " | ".join(_cell(point[j], boot[label][:, j]) for j in range(3))
        table.append(f"| {m} | {k} | {cells} |")
    ratios = []
    for m in ("hybrid", "content"):
        for j, metric in ((0, "HR@10"), (1, "NDCG@10")):
            both, taste = english[f"{m}|both"][:, j].mean(), english[f"{m}|taste"][:, j].mean()
            words = english[f"{m}|words"][:, j].mean()
            r = boot[f"{m}|both"][:, j] / np.maximum(boot[f"{m}|taste"][:, j], 1e-12)
            ratios.append(
                f"| {m} | {metric} | {both / taste:.2f}x {ci(r)} | {both:.3f} vs {words:.3f} |"
            )
    zh_rows = []
    for m in ("hybrid", "content") if chinese else ():
        for k in ("both", "words"):
            en, cn = chinese[f"{m}|{k}, English"][:, 0], chinese[f"{m}|{k}, Chinese"][:, 0]
            r = boot_zh[f"{m}|{k}, Chinese"][:, 0] / np.maximum(
                boot_zh[f"{m}|{k}, English"][:, 0], 1e-12
            )
            zh_rows.append(
                f"| {m} | {k} | {en.mean():.3f} | {cn.mean():.3f} | {cn.mean() / en.mean():.2f}x "
                f"{ci(r)} |"
            )
    n_pairs, n_zh = len(np.unique(pair_id)), len(np.unique(pair_id[in_zh]))
    lines = "\n".join(f"  - {e}" for e in example.explanations[0])
    fit_times = ", ".join(f"{k} {v:.0f} s" for k, v in fits.items())
    zh_text = (
        f"""**Chinese requests.** The {len(json.loads(ZH.read_text("utf-8")))} most frequent
tags, translated by hand (`benchmarks/data/tags_zh.json`), cover {int(in_zh.sum()):,} of the
requests ({n_zh:,} pairs); on those, HR@10 of the Chinese request against the same request in
English:

| model | request | English HR@10 | Chinese HR@10 | Chinese / English |
|---|---|---|---|---|
{chr(10).join(zh_rows)}
"""
        if chinese
        else f"(No Chinese rows: the request encoder `{encoder}` reads English only.)\n{UNMEASURED}"
    )
    return f"""Request encoder of hybrid and content: `{encoder}`.
ml-latest-small. Each (person, film) the person rated and tagged is a pair:
{n_pairs:,} pairs,
{len(pair_id):,} (pair, tag) requests, {n_tags:,} distinct tags (people's own MovieLens tags,
`raw/ml-latest-small/tags.csv`, lower-cased). All these ratings are held out of training and
every film's `tags` field is blanked in the training copy, so no request finds its answer
written in the catalog. Requests: **both** `{{user_id, query: tag}}`, **taste** `{{user_id}}`,
**words** `{{query: tag}}` without history. The answer is the held-out film, ranked among the
films the person has not rated in training. A pair's figures are the mean of its tags; 95%
intervals from {BOOTSTRAP} bootstrap resamples of the pairs (the same resamples for every row,
so ratios pair up). MRR: reciprocal rank within the top {DEPTH}. One fit per model (seed 0); fit
times {fit_times}; {seconds / 60:.0f} min in all.

| model | request | HR@10 | NDCG@10 | MRR |
|---|---|---|---|---|
{chr(10).join(table)}

both against taste (ratio, bootstrap interval) and both against words:

| model | metric | both / taste | both vs words |
|---|---|---|---|
{chr(10).join(ratios)}

{zh_text}

An explanation of the learned blend (the first request, top 3):
{lines}

{NOTES}
"""


def main() -> None:
    import argparse
    import copy
    import time

    from avrec.fusion.features import item_features
    from avrec.models.base import TrainData
    from avrec.models.registry import create_model
    from benchmarks._report import write_section

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--query-encoder",
        default="text-multi",
        help="the request encoder of hybrid and content (text-en: English only, no Chinese rows)",
    )
    encoder = parser.parse_args().query_encoder
    chinese = encoder == "text-multi"
    settings = {
        "hybrid": {"content": {"query_encoder": encoder}},
        "content": {"query_encoder": encoder},
        "ease": {},
    }
    t0 = time.time()
    dataset, pairs = training_copy()
    train = TrainData.from_dataset(dataset, item_features(dataset, encode_missing=True))
    pair_id = pairs.groupby(["user_id", "item_id"], sort=True).ngroup().to_numpy()
    users, tags, answers = list(pairs["user_id"]), list(pairs["tag"]), list(pairs["item_id"])
    zh_names = json.loads(ZH.read_text("utf-8"))
    in_zh = np.array([t in zh_names for t in tags])
    zh = [zh_names.get(t) for t in tags]
    fits, rows = {}, {}
    for name in ("hybrid", "content", "ease"):
        start = time.time()
        model = create_model(name, settings[name]).fit(train)
        fits[name] = time.time() - start
        print(f"{name} fitted in {fits[name]:.0f} s", flush=True)
        kinds = {"taste": (users, None)}
        if name != "ease":
            kinds["both"] = (users, tags)
            kinds["words"] = ([None] * len(users), tags)
        for kind, (who, queries) in kinds.items():
            rows[(name, kind)] = per_request(recommend(model, who, queries), answers)
        if name == "hybrid":
            fixed = copy.copy(model)
            fixed.request_rank = None  # the fixed z-score blend (RequestBlendConfig.weight)
            rows[(name, "both, fixed blend 0.7")] = per_request(
                recommend(fixed, users, tags), answers
            )
            rows[(name, "words, similarity alone")] = per_request(
                recommend(fixed, [None] * len(users), tags), answers
            )
            example = model.recommend([users[0]], 3, queries=[tags[0]], explain=True)
        if name != "ease" and chinese:
            sub = np.flatnonzero(in_zh)
            zh_q = [zh[i] for i in sub]
            for kind, who in (("both", [users[i] for i in sub]), ("words", [None] * len(sub))):
                got = np.zeros((len(users), 3))
                got[sub] = per_request(recommend(model, who, zh_q), [answers[i] for i in sub])
                rows[(name, f"{kind}, Chinese")] = got
        print(f"{name} done at {time.time() - t0:.0f} s", flush=True)
    write_section(
        "requests",
        "Requests with taste: people's own tags as requests",
        report(rows, pair_id, in_zh, fits, example, len(set(tags)), encoder, time.time() - t0),
        "benchmarks/bench_requests.py",
    )


if __name__ == "__main__":
    main()
