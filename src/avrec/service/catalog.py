"""The served catalog, keyed by item id.

Its rows follow the model's item vocabulary, the one vocabulary of the service: row ``n`` is the
model's item ``n``. Positions stay inside this class (and the model); every method takes and
returns item ids, so routes and the recommendation path never convert back and forth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from avrec.data.dataset import split_multi
from avrec.data.vocab import Vocabulary
from avrec.index.base import VectorIndex
from avrec.service.rwlock import ReadWriteLock

#: at most this many cached filter masks (kind / language values)
MASK_CACHE = 256
#: the catalog columns an answer reads per item (``brief``, ``facets``)
ANSWER_COLUMNS = ("title", "kind", "genres", "language")


@dataclass(frozen=True)
class Facets:
    """What a profile counts of an item: its genres, kind and language."""

    genres: list[str]
    kind: str | None
    language: str | None


class Catalog:
    def __init__(
        self,
        frame: pd.DataFrame,
        vocab: Vocabulary,
        popularity: np.ndarray,
        vectors: np.ndarray | None,
        index: VectorIndex | None = None,
        index_lock: ReadWriteLock | None = None,
    ):
        self.frame = frame.reset_index(drop=True)
        self._vocab = vocab
        self.ids = vocab.ids
        self._popularity = popularity
        self._vectors = vectors
        self.index = index
        self._index_lock = index_lock or ReadWriteLock()
        self._columns: dict[str, list] = {}
        self._masks: dict[tuple[str, str], np.ndarray] = {}
        self._genres: dict[int, list[str]] = {}
        self._genre_rows: np.ndarray | None = None

    def warm(self) -> None:
        """Build the per-item columns that answers read now rather than in the first requests
        (for a state built beside the serving one, ``service/follow.py``)."""
        for name in ANSWER_COLUMNS:
            self._column(name)

    # ---- lookups ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._vocab

    @property
    def has_vectors(self) -> bool:
        return self._vectors is not None

    def unknown(self, item_ids: Iterable[str]) -> list[str]:
        return [i for i in item_ids if i not in self._vocab]

    def _column(self, name: str) -> list:
        """A catalog column as a plain list (fast per-item reads); Nones where absent."""
        values = self._columns.get(name)
        if values is None:
            values = (
                [
                    None if v is None or (isinstance(v, float) and v != v) else v
                    for v in self.frame[name].tolist()
                ]
                if name in self.frame
                else [None] * len(self.frame)
            )
            self._columns[name] = values
        return values

    def _genres_at(self, pos: int) -> list[str]:
        out = self._genres.get(pos)
        if out is None:
            out = self._genres[pos] = split_multi(self._column("genres")[pos])
        return out

    def field(self, item_id: str, name: str):
        pos = self._vocab.get(item_id)
        return None if pos is None else self._column(name)[pos]

    def facets(self, item_id: str) -> Facets | None:
        pos = self._vocab.get(item_id)
        if pos is None:
            return None
        return Facets(
            self._genres_at(pos), self._column("kind")[pos], self._column("language")[pos]
        )

    def card(self, item_id: str) -> dict:
        """The item as the API shows it in a list (a known id)."""
        row = self.frame.iloc[self._vocab.index(item_id)]
        out = {"item_id": row["item_id"]}
        for col in ("title", "kind", "language", "year"):
            v = row.get(col)
            if isinstance(v, np.generic):  # a numpy scalar (an int64 year): JSON needs Python's
                v = v.item()
            out[col] = (
                None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
            )
        out["genres"] = split_multi(row.get("genres"))
        out["tags"] = split_multi(row.get("tags"))[:12]
        out["poster"] = f"/media/{row['item_id']}"
        return out

    def brief(self, item_id: str) -> dict:
        """Title, genres and kind of an item in a recommendation (None / [] when unknown)."""
        pos = self._vocab.get(item_id)
        if pos is None:
            return {"title": None, "genres": [], "kind": None}
        return {
            "title": self._column("title")[pos],
            "genres": self._genres_at(pos),
            "kind": self._column("kind")[pos],
        }

    def popularity(self, item_id: str) -> int:
        pos = self._vocab.get(item_id)
        return 0 if pos is None else int(self._popularity[pos])

    def title_matches(self, text: str) -> list[str]:
        """Ids of the items whose title contains ``text`` (case-insensitive), catalog order."""
        if "title" not in self.frame:
            return []
        titles = self.frame["title"].fillna("").str.lower()
        return [str(i) for i in self.ids[titles.str.contains(text.lower(), regex=False)]]

    def top(self, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` best items of an array of scores over the model's items."""
        top = np.argsort(-scores, kind="stable")[:k]
        return [(str(self.ids[i]), float(scores[i])) for i in top]

    # ---- filters ---------------------------------------------------------------------
    def _mask(
        self, kind: str | None, language: str | None, rules: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Items passing the filters; ``rules``: the business rules' own mask (rows of this
        catalog), combined with them."""
        if not kind and not language:
            return None if rules is None else rules
        mask = np.ones(len(self.frame), dtype=bool) if rules is None else rules.copy()
        for name, value in (("kind", kind), ("language", language)):
            if not value:
                continue
            cached = self._masks.get((name, value))
            if cached is None:
                cached = (
                    (self.frame[name] == value).to_numpy(dtype=bool, na_value=False)
                    if name in self.frame
                    else np.zeros(len(self.frame), dtype=bool)
                )
                if len(self._masks) > MASK_CACHE:
                    self._masks.clear()
                self._masks[(name, value)] = cached
            mask &= cached
        return mask

    def allowed(
        self, kind: str | None, language: str | None, rules: np.ndarray | None = None
    ) -> list[str] | None:
        """Ids passing the filters (None: no filter)."""
        mask = self._mask(kind, language, rules)
        return None if mask is None else [str(i) for i in self.ids[mask]]

    # ---- content vectors -------------------------------------------------------------
    def vector(self, item_id: str) -> np.ndarray | None:
        pos = self._vocab.get(item_id)
        if pos is None or self._vectors is None or pos >= len(self._vectors):
            return None
        return self._vectors[pos]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Index positions and scores (the index is over this catalog's rows)."""
        if self.index is None:
            raise RuntimeError("the service has no vector index (no content vectors)")
        with self._index_lock.read():
            return self.index.search(queries, k)

    def nearest(
        self,
        query: np.ndarray,
        depth: int,
        exclude: Iterable[str] = (),
        kind: str | None = None,
        language: str | None = None,
        rules: np.ndarray | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """The items nearest to ``query`` in the index, ``exclude`` and filtered-out ones
        dropped from an over-fetched list; an exact scan of the allowed items when too few
        survive the filters (``rules``: the business rules' mask, a filter too)."""
        seen = {self._vocab[i] for i in exclude if i in self._vocab}
        mask = self._mask(kind, language, rules)
        fetch = depth + len(seen)
        if mask is not None:
            fetch = 4 * fetch + 50
        idx, scores = self.search(query[None, :], fetch)
        idx, scores = idx[0], scores[0].astype(np.float64)
        keep = np.array(
            [i >= 0 and int(i) not in seen and (mask is None or mask[i]) for i in idx], dtype=bool
        )
        idx, scores = idx[keep], scores[keep]
        if mask is not None and len(idx) < depth:
            allowed = np.flatnonzero(mask)
            allowed = allowed[~np.isin(allowed, list(seen))]
            assert self._vectors is not None  # an index exists only over content vectors
            exact = self._vectors[allowed] @ query
            order = np.argsort(-exact, kind="stable")[:fetch]
            idx, scores = allowed[order], exact[order].astype(np.float64)
        return [str(self.ids[int(i)]) for i in idx], scores

    def similar(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` items nearest to ``item_id`` in the index, itself excluded."""
        vec = self.vector(item_id)
        if vec is None:
            return []
        ids, scores = self.nearest(vec, k, exclude=[item_id])
        return list(zip(ids, scores.tolist(), strict=True))[:k]

    def max_similarity(self, item_ids: Sequence[str], others: Sequence[str]) -> np.ndarray | None:
        """For each of ``item_ids`` its largest content cosine to any of ``others`` (None when
        there are no vectors or none of ``others`` is known)."""
        if self._vectors is None:
            return None
        other = [self._vocab[i] for i in others if i in self._vocab]
        if not other or not item_ids:
            return None
        mine = [self._vocab[i] for i in item_ids]
        return (self._vectors[mine] @ self._vectors[other].T).max(axis=1)

    def rerank(
        self, item_ids: Sequence[str], scores: np.ndarray, k: int, options, history: Sequence[str]
    ) -> list[int]:
        """Indices into ``item_ids`` (the model's list, best first) of the ``k`` to show, by
        ``options`` (``rerank.apply.RerankOptions``): content vectors (genres where the model
        has none) for MMR and DPP, the history's genre mix for calibration, the training
        popularity for debias."""
        from avrec import metrics as M
        from avrec.rerank.apply import rerank

        genres = self._genre_distributions()
        pos = np.array([self._vocab[i] for i in item_ids], dtype=np.int64)
        vectors = self._vectors if self._vectors is not None else genres
        chosen = rerank(
            np.arange(len(pos)),
            np.asarray(scores, dtype=np.float64),
            k,
            kind=options.kind,
            diversity=options.diversity,
            debias=options.debias,
            item_vectors=vectors[pos],
            item_genres=genres[pos],
            target=M.genre_distribution(
                [self._vocab[i] for i in history if i in self._vocab], genres
            ),
            popularity=self._popularity[pos],
        )
        return [int(i) for i in chosen]

    def ruled(
        self,
        rules,
        item_ids: Sequence[str],
        scores: np.ndarray,
        k: int,
        options,
        history: Sequence[str],
        excluded: Iterable[str],
    ) -> tuple[list[str], list[int], list[str | None]]:
        """``rules`` (``rerank.rules.CompiledRules`` of this catalog) applied to the model's
        list, after the re-ranking of ``options`` where active: the ids to show, each one's
        index in ``item_ids`` (-1: pinned from outside it) and the rule that moved it.
        ``excluded``: ids a pin must not bring back (seen, rejected)."""
        from avrec.rerank.rules import apply_rules

        pos = np.array([self._vocab[i] for i in item_ids], dtype=np.int64)
        order = None
        if options is not None and options.active:

            def order(at: np.ndarray, values: np.ndarray) -> np.ndarray:
                chosen = self.rerank([item_ids[i] for i in at], values, len(at), options, history)
                return np.asarray(at)[np.asarray(chosen, dtype=np.int64)]

        out = apply_rules(
            rules,
            pos,
            np.asarray(scores, dtype=np.float64),
            k,
            exclude=[self._vocab[i] for i in excluded if i in self._vocab],
            order=order,
        )
        return [str(self.ids[i]) for i in out.items], out.pool.tolist(), out.reasons

    def _genre_distributions(self) -> np.ndarray:
        """``p(g|i)`` rows of the catalog's genres (made once)."""
        if self._genre_rows is None:
            from avrec import metrics as M
            from avrec.fusion.features import genre_matrix

            self._genre_rows = M.item_genre_distribution(genre_matrix(self.frame))
        return self._genre_rows

    def explain_by_history(self, history: Sequence[str], item_ids: Sequence[str]) -> list[str]:
        """A sentence per item: the history items it is closest to (content vectors)."""
        from avrec.rerank.because import explain_by_history

        if self._vectors is None:
            return []
        titles = self._column("title")

        def title(j: int) -> str:
            return titles[j] or str(self.ids[j])

        return explain_by_history(
            self._vectors,
            [self._vocab[i] for i in history if i in self._vocab],
            np.array([self._vocab[i] for i in item_ids], dtype=np.int64),
            title,
            self._genres_at,
            self._popularity,
        )
