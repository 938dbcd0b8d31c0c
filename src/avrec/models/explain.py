"""Short, faithful explanations: the history items that contributed most to an item's score
(from the model's own additive decomposition), and the content attributes they share."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.dataset import split_multi
from avrec.models.capabilities import content_part, request_encoder

MAX_REASONS = 2


#: id(owner) -> (weak reference to it, {key: per-item values}); entries leave with the owner
_CACHE: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}

_T = TypeVar("_T", bound=Sequence[Any] | np.ndarray)


def per_item(owner, n: int, key: str, make: Callable[[], _T]) -> _T:
    """``make()`` (``n`` values, one per item), computed once per ``owner`` object, the
    catalog, training matrix or array it is derived from (a grown catalog or matrix is a new
    object; a changed ``n`` recomputes)."""
    ident = id(owner)
    entry = _CACHE.get(ident)
    if entry is None or entry[0]() is not owner:
        entry = (weakref.ref(owner), {})
        _CACHE[ident] = entry
        weakref.finalize(owner, _CACHE.pop, ident, None)
    cache = entry[1]
    if len(cache.get(key, ())) != n:
        cache[key] = make()
    return cache[key]


def split_values(catalog: pd.DataFrame, col: str) -> list[list[str]]:
    """``split_multi`` of every row of ``catalog[col]`` (cached per catalog object)."""
    return per_item(
        catalog,
        len(catalog),
        "split:" + col,
        lambda: [split_multi(v) for v in catalog[col].tolist()],
    )


def _titles(catalog: pd.DataFrame | None) -> list[str] | None:
    """Every row's title ("" where missing), cached per catalog object."""
    if catalog is None or "title" not in catalog:
        return None
    return per_item(
        catalog,
        len(catalog),
        "title",
        lambda: ["" if pd.isna(v) else str(v) for v in catalog["title"].tolist()],
    )


def _attribute_lists(catalog: pd.DataFrame | None) -> list[list[list[str]]]:
    """The split genres and tags of every catalog row (the columns the catalog has)."""
    if catalog is None:
        return []
    return [split_values(catalog, col) for col in ("genres", "tags") if col in catalog]


def _shared(lists: list[list[list[str]]], item: int, others: list[int]) -> list[str]:
    out: list[str] = []
    for values in lists:
        theirs = {v for o in others for v in values[o]}
        out += [v for v in values[item] if v in theirs]
    return list(dict.fromkeys(out))[:3]


def shared_attributes(catalog: pd.DataFrame | None, item: int, others: list[int]) -> list[str]:
    """Up to three genres or tags of ``item`` that ``others`` also have."""
    return _shared(_attribute_lists(catalog), item, others) if others else []


def explain_items(
    model,
    history: sp.csr_matrix,
    items: np.ndarray,
    query: str | None = None,
    user: int = -1,
    contrib: np.ndarray | None = None,
) -> list[str]:
    """One sentence per item. Uses ``model.contributions`` when the model has it (or
    ``contrib``, the same computed beforehand for a batch); a request is cited with the
    item's similarity to it; otherwise says what the score rests on."""
    hist_idx = history.indices
    if contrib is None and len(hist_idx):
        contrib = model.contributions(history, items, user)
    query_sim = _query_similarity(model, query, items)
    if query_sim is not None and query is not None:
        genres = (
            split_values(model.catalog, "genres")
            if model.catalog is not None and "genres" in model.catalog
            else None
        )
        out = []
        for n, item in enumerate(items):
            text = f"matches your request “{query[:80]}” (similarity {query_sim[n]:.2f})"
            attrs = genres[int(item)][:3] if genres is not None else []
            text += "; " + ", ".join(attrs) if attrs else ""
            if contrib is not None and len(hist_idx) and contrib[n].max() > 0:
                # the taste side: the history item that lifts this one most
                best = int(hist_idx[contrib[n].argmax()])
                text += f"; people who liked {_name(model, best)} liked it"
            out.append(text)
        return out
    titles, lists = _titles(model.catalog), _attribute_lists(model.catalog)
    ids = model.item_vocab.ids
    return history_sentences(
        contrib,
        hist_idx,
        items,
        name=lambda j: (titles[j] if titles is not None else "") or str(ids[j]),
        shared=lambda item, top: _shared(lists, item, top),
        fallback=lambda item: _fallback(model, item),
    )


def history_sentences(
    contrib: np.ndarray | None,
    hist: np.ndarray,
    items: np.ndarray,
    name: Callable[[int], str],
    shared: Callable[[int, list[int]], list[str]],
    fallback: Callable[[int], str],
) -> list[str]:
    """The one explanation engine, on arrays: ``contrib[n, j]`` is how much history item
    ``hist[j]`` adds to the score of ``items[n]``. Each item is explained by its strongest
    history items and their share of the positive terms ("because you liked X and Y (40% of
    the score); shares Drama"); an item with no positive term by ``fallback(item)``."""
    items = np.asarray(items, dtype=np.int64)
    out: list[str] = []
    if contrib is None or not len(hist):
        return [fallback(int(item)) for item in items]
    positive = np.clip(contrib, 0, None)
    any_positive = (positive > 0).any(axis=1)
    order = np.argsort(-contrib, axis=1)[:, :MAX_REASONS]
    top_share = np.take_along_axis(positive, order, axis=1).sum(axis=1) / np.maximum(
        positive.sum(axis=1), 1e-9
    )
    for n, item in enumerate(items):
        if not any_positive[n]:
            out.append(fallback(int(item)))
            continue
        top = [int(hist[j]) for j in order[n] if contrib[n, j] > 0]
        text = (
            "because you liked "
            + " and ".join(name(j) for j in top)
            + f" ({top_share[n]:.0%} of the score)"
        )
        attrs = shared(int(item), top)
        if attrs:
            text += "; shares " + ", ".join(attrs)
        out.append(text)
    return out


def _query_similarity(model, query: str | None, items: np.ndarray) -> np.ndarray | None:
    encoder = request_encoder(model)
    if not query or not query.strip() or encoder is None:
        return None
    q = encoder.encode_queries([query])[0]
    vectors = encoder.query_vectors
    assert vectors is not None  # request_encoder returns only parts with request vectors
    return vectors[items] @ q


def _fallback(model, item: int) -> str:
    """What a score without a split by history item rests on: the model's own words for it
    (``unsplit_reason``) where it has them, and the item's popularity."""
    reason = model.unsplit_reason
    if model.train_matrix is not None:
        m = model.train_matrix
        count = int(per_item(m, m.shape[1], "count", lambda: m.getnnz(axis=0))[item])
        if count:
            return (
                f"{reason}; {count} people interacted with it"
                if reason
                else f"popular: {count} people interacted with it"
            )
    return reason or "new item (no interactions yet), ranked by its content"


def _name(model, item: int) -> str:
    """The item's title, or its ID where the catalog has none."""
    titles = _titles(model.catalog)
    return (titles[item] if titles is not None else "") or str(model.item_vocab.ids[item])


def _people(catalog: pd.DataFrame | None, item: int) -> set[str]:
    if catalog is None or "tags" not in catalog:
        return set()
    out = set()
    for part in split_multi(catalog.at[item, "tags"]):
        kind, _, rest = part.partition(":")
        out |= {f"{kind}: {x.strip()}" for x in rest.split(",") if x.strip()} if rest else {part}
    return out


def _looks_like(model, hist: list[int], item: int) -> str:
    """ "it looks and sounds like X": the history item nearest in the media vectors."""
    sig = model.cold_signals
    where = np.flatnonzero(sig["cand"] == item)
    hist = [j for j in hist if j < len(sig["media_sim"])]  # not items added after training
    if not len(where) or not hist:
        return "how it looks and sounds"
    best = hist[int(np.argmax(sig["media_sim"][hist, where[0]]))]
    return f"it looks and sounds like {_name(model, best)}"


def cold_reason(model, history: sp.csr_matrix, item: int, groups: list[str], user: int = -1) -> str:
    """A sentence for a new item ranked by a learned cold-item ranker, from the evidence
    ``groups`` (models.coldrank.FEATURE_GROUPS) that raised its score most, strongest first."""
    hist = [int(j) for j in history.indices]
    cat = model.catalog
    parts = []
    for group in groups:
        if group == "collab":
            split = model.contributions(history, np.array([item]), user)
            assert split is not None, "the collab group comes from models that split scores"
            contrib = split[0]
            best = hist[int(np.argmax(contrib))]
            parts.append(f"people who liked {_name(model, best)} liked films like it")
        elif group == "text":
            part = content_part(model)
            assert part is not None, "the text group comes from models with content vectors"
            vectors = part.vectors
            best = hist[int(np.argmax(vectors[hist] @ vectors[item]))]
            parts.append(f"its story is close to {_name(model, best)}")
        elif group == "genre":
            shared = (
                [
                    g
                    for g in split_multi(cat.at[item, "genres"])
                    if any(g in split_multi(cat.at[j, "genres"]) for j in hist)
                ]
                if cat is not None and "genres" in cat
                else []
            )
            parts.append("genres you watch" + (f" ({', '.join(shared[:3])})" if shared else ""))
        elif group == "people":
            mine = _people(cat, item)
            with_who = [(p, j) for j in hist for p in sorted(mine & _people(cat, j))]
            parts.append(
                f"shares {with_who[0][0]} with {_name(model, with_who[0][1])}"
                if with_who
                else "its director and cast"
            )
        elif group == "year":
            year = cat.at[item, "year"] if cat is not None and "year" in cat else None
            parts.append(
                "from the years you watch"
                + (f" ({int(year)})" if year is not None and pd.notna(year) else "")
            )
        elif group == "popularity":
            parts.append("its cast and content point to a widely watched title")
        elif group == "media":
            parts.append(_looks_like(model, hist, item))
    reason = "; ".join(parts) if parts else "ranked by its content"
    return f"new item (no interactions yet): {reason}"
