"""Short, faithful explanations: the history items that contributed most to an item's score
(from the model's own additive decomposition), and the content attributes they share."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.dataset import split_multi

MAX_REASONS = 2


def _titles(model) -> pd.Series | None:
    cat = model.catalog
    return None if cat is None or "title" not in cat else cat["title"]


#: id(catalog) -> (weak reference to it, {column: split values}); entries leave with the catalog
_SPLIT: dict[int, tuple[weakref.ref, dict[str, list[list[str]]]]] = {}


def split_values(catalog: pd.DataFrame, col: str) -> list[list[str]]:
    """``split_multi`` of every row of ``catalog[col]``, computed once per catalog object
    (a grown catalog is a new DataFrame; a changed length recomputes)."""
    key = id(catalog)
    entry = _SPLIT.get(key)
    if entry is None or entry[0]() is not catalog:
        entry = (weakref.ref(catalog), {})
        _SPLIT[key] = entry
        weakref.finalize(catalog, _SPLIT.pop, key, None)
    cache = entry[1]
    if len(cache.get(col, ())) != len(catalog):
        cache[col] = [split_multi(v) for v in catalog[col].tolist()]
    return cache[col]


def shared_attributes(catalog: pd.DataFrame | None, item: int, others: list[int]) -> list[str]:
    if catalog is None or not others:
        return []
    out: list[str] = []
    for col in ("genres", "tags"):
        if col not in catalog:
            continue
        values = split_values(catalog, col)
        theirs = {v for o in others for v in values[o]}
        out += [v for v in values[item] if v in theirs]
    return list(dict.fromkeys(out))[:3]


def explain_items(model, history: sp.csr_matrix, items: np.ndarray,
                  query: str | None = None, user: int = -1,
                  contrib: np.ndarray | None = None) -> list[str]:
    """One sentence per item. Uses ``model.contributions`` when the model has it (or
    ``contrib``, the same computed beforehand for a batch); a request is cited with the
    item's similarity to it; otherwise says what the score rests on."""
    hist_idx = history.indices
    titles = _titles(model)
    if contrib is None and len(hist_idx):
        contrib = model.contributions(history, items, user)
    query_sim = _query_similarity(model, query, items)
    out = []
    for n, item in enumerate(items):
        if query_sim is not None:
            text = f"matches your request “{query[:80]}” (similarity {query_sim[n]:.2f})"
            attrs = split_values(model.catalog, "genres")[int(item)][:3] \
                if model.catalog is not None and "genres" in model.catalog else []
            out.append(text + ("; " + ", ".join(attrs) if attrs else ""))
            continue
        if contrib is None or not np.any(contrib[n] > 0):
            out.append(_fallback(model, int(item)))
            continue
        order = np.argsort(-contrib[n])[:MAX_REASONS]
        top = [int(hist_idx[j]) for j in order if contrib[n, j] > 0]
        share = contrib[n, order].clip(min=0).sum() / max(contrib[n].clip(min=0).sum(), 1e-9)
        names = [str(titles.iloc[j]) if titles is not None else model.item_vocab.ids[j] for j in top]
        text = "because you liked " + " and ".join(names) + f" ({share:.0%} of the score)"
        attrs = shared_attributes(model.catalog, int(item), top)
        if attrs:
            text += "; shares " + ", ".join(attrs)
        out.append(text)
    return out


def _query_similarity(model, query: str | None, items: np.ndarray) -> np.ndarray | None:
    content = getattr(model, "content", model)
    if not query or not query.strip() or getattr(content, "query_vectors", None) is None:
        return None
    q = content.encode_queries([query])[0]
    return content.query_vectors[items] @ q


def _fallback(model, item: int) -> str:
    if model.train_matrix is not None:
        count = int(model.train_matrix[:, item].nnz)
        if count:
            return f"popular: {count} people interacted with it"
    return "new item (no interactions yet), ranked by its content"


def _name(model, item: int) -> str:
    titles = _titles(model)
    return str(titles.iloc[item]) if titles is not None else str(model.item_vocab.ids[item])


def _people(catalog: pd.DataFrame | None, item: int) -> set[str]:
    if catalog is None or "tags" not in catalog:
        return set()
    out = set()
    for part in split_multi(catalog.at[item, "tags"]):
        kind, _, rest = part.partition(":")
        out |= {f"{kind}: {x.strip()}" for x in rest.split(",") if x.strip()} if rest else {part}
    return out


def cold_reason(model, history: sp.csr_matrix, item: int, groups: list[str],
                user: int = -1) -> str:
    """A sentence for a new item ranked by a learned cold-item ranker, from the evidence
    ``groups`` (models.coldrank.FEATURE_GROUPS) that raised its score most, strongest first."""
    hist = [int(j) for j in history.indices]
    cat = model.catalog
    parts = []
    for group in groups:
        if group == "collab":
            contrib = model.contributions(history, np.array([item]), user)[0]
            best = hist[int(np.argmax(contrib))]
            parts.append(f"people who liked {_name(model, best)} liked films like it")
        elif group == "text":
            vectors = model.content.vectors
            best = hist[int(np.argmax(vectors[hist] @ vectors[item]))]
            parts.append(f"its story is close to {_name(model, best)}")
        elif group == "genre":
            shared = [g for g in split_multi(cat.at[item, "genres"])
                      if any(g in split_multi(cat.at[j, "genres"]) for j in hist)] \
                if cat is not None and "genres" in cat else []
            parts.append("genres you watch" + (f" ({', '.join(shared[:3])})" if shared else ""))
        elif group == "people":
            mine = _people(cat, item)
            with_who = [(p, j) for j in hist for p in sorted(mine & _people(cat, j))]
            parts.append(f"shares {with_who[0][0]} with {_name(model, with_who[0][1])}"
                         if with_who else "its director and cast")
        elif group == "year":
            year = cat.at[item, "year"] if cat is not None and "year" in cat else None
            parts.append("from the years you watch" + (f" ({int(year)})" if pd.notna(year) else ""))
        elif group == "popularity":
            parts.append("its cast and content point to a widely watched title")
    reason = "; ".join(parts) if parts else "ranked by its content"
    return f"new item (no interactions yet): {reason}"
