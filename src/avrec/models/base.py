"""The recommender contract, shared by every model (baselines, content, two-tower, ...).

A model is configured in its constructor (settings only), learns in :meth:`Recommender.fit`
from a :class:`TrainData`, and scores batches of users in :meth:`Recommender.score`:
``score(users, histories) -> float32 [n, n_items]`` where ``users`` are indices into the
training user vocabulary (``-1`` for a user the model has not seen) and ``histories`` is a CSR
matrix ``[n, n_items]`` of the items each user interacted with (their training row, or a
history given with the request). Everything else -- masking seen items, candidate sets,
top-k, external IDs, persistence -- lives here once.

Save format: a directory with ``manifest.json`` (model name, config, versions, and under
``fitted`` what the fit recorded besides arrays, such as a wall-clock cap that stopped it), the
vocabularies as JSON, and learned arrays in ``state.npz`` (loaded without pickle).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from avrec.data.dataset import Dataset
from avrec.data.matrix import interaction_matrices
from avrec.data.npz import read_npz
from avrec.data.vocab import Vocabulary
from avrec.models.arrays import csr_row, top_k
from avrec.models.names import get_model_class

MANIFEST = "manifest.json"
STATE = "state.npz"
CATALOG = "catalog.jsonl"
CATALOG_COLUMNS = ["item_id", "title", "genres", "tags", "kind", "language", "year"]


class ModelConfig(BaseModel):
    """Base class of every model's config: typed, validated, JSON round-trip."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0


def _fingerprint(matrix: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> str:
    """A short sha256 of a training matrix and its vocabularies."""
    h = hashlib.sha256()
    for arr in (matrix.indptr, matrix.indices, matrix.data):
        h.update(np.ascontiguousarray(arr).tobytes())
    for ids in (users, items):
        h.update("\x1f".join(map(str, ids)).encode("utf-8"))
    return h.hexdigest()[:16]


@dataclass
class TrainData:
    """What a model learns from: interactions as a users x items matrix plus the catalog.

    ``items`` holds the whole catalog in item-vocabulary order, so items without any
    interaction (cold items) have indices too. ``matrix`` has one entry per (user, item)
    pair (value = ``weight`` if given, else 1). ``ratings`` holds explicit ratings where the
    data has them (last rating per pair). ``item_features`` maps a feature name (e.g.
    ``"text"``, ``"image"``, ``"fused"``) to an ``[n_items, d]`` float32 array aligned with
    ``item_vocab``.
    """

    items: pd.DataFrame
    interactions: pd.DataFrame
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    matrix: sp.csr_matrix
    ratings: sp.csr_matrix | None = None
    users: pd.DataFrame | None = None
    root: Path | None = None
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    #: same pattern as ``matrix``; value = recency rank within the user (1 = most recent)
    recency: sp.csr_matrix | None = None
    #: the encoder of ``item_features["text"]`` (avrec.fusion.features.featurize)
    text_encoder: str | None = "text-en"

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        item_features: dict[str, np.ndarray] | None = None,
        text_encoder: str | None = "text-en",
    ) -> TrainData:
        items = dataset.items
        item_vocab = Vocabulary(items["item_id"])
        inter = dataset.interactions
        user_ids = list(dict.fromkeys(sorted(inter["user_id"].unique().tolist())))
        if dataset.users is not None:
            known = set(user_ids)
            user_ids += [u for u in dataset.users["user_id"] if u not in known]
        user_vocab = Vocabulary(user_ids)
        rows = user_vocab.lookup(inter["user_id"].tolist())
        cols = item_vocab.lookup(inter["item_id"].tolist())
        if (cols < 0).any():
            bad = inter["item_id"].iloc[int(np.argmax(cols < 0))]
            raise ValueError(f"interaction names item {bad!r} that is not in the catalog")
        shape = (len(user_vocab), len(item_vocab))
        built = interaction_matrices(
            rows,
            cols,
            inter["weight"].to_numpy(dtype=float, na_value=np.nan),
            inter["rating"].to_numpy(dtype=float, na_value=np.nan),
            inter["timestamp"].to_numpy(dtype=float, na_value=np.nan),
            shape,
        )
        features = {}
        for name, arr in (item_features or {}).items():
            arr = np.asarray(arr, dtype=np.float32)
            if arr.shape[0] != len(item_vocab):
                raise ValueError(
                    f"item feature {name!r} has {arr.shape[0]} rows, catalog has {len(item_vocab)}"
                )
            features[name] = arr
        return cls(
            items.reset_index(drop=True),
            inter,
            user_vocab,
            item_vocab,
            built.matrix,
            built.ratings,
            dataset.users,
            dataset.root,
            features,
            built.recency,
            text_encoder if "text" in features else None,
        )

    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)


def share_exceeded(users: int, rank: int, max_share: float, n_items: int) -> str:
    """Why a warm start was not taken: its update is too large against a fit."""
    return (
        f"{users} users' rows changed: an update of rank {rank}, more than the warm-start "
        f"share {max_share:g} of the {n_items} items"
    )


def rows_for(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix``'s rows ``rows`` (-1: an empty row)."""
    picked = matrix[np.maximum(rows, 0)].tocsr()
    picked = (sp.diags((rows >= 0).astype(matrix.dtype)) @ picked).tocsr()
    picked.eliminate_zeros()
    return picked


@dataclass
class Recommendations:
    """Top-k lists for a batch of requests, with external IDs."""

    user_ids: list[str | None]
    items: list[list[str]]
    scores: list[list[float]]
    explanations: list[list[str]] | None = None

    def to_records(self) -> list[dict[str, Any]]:
        out = []
        for n, user in enumerate(self.user_ids):
            rec = {"user_id": user, "items": self.items[n], "scores": self.scores[n]}
            rec["explanations"] = self.explanations[n] if self.explanations else []
            out.append(rec)
        return out


class Recommender(ABC):
    """Base class of all models. Subclasses set ``name`` and ``Config`` and implement
    ``_fit``, ``score`` and (for persistence) ``state_arrays`` / ``load_state_arrays``."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: whether the model can score items that had no training interactions
    content_aware: ClassVar[bool] = False
    #: whether :meth:`score_items` scores a few items for less than the whole catalog (what a
    #: retrieval cascade, avrec.index.cascade, saves by)
    scores_subsets: ClassVar[bool] = False
    #: whether ``unlearn`` (capabilities.Unlearns) works on a model loaded with its large
    #: arrays mapped read-only and without its catalog (models.forget.unlearned loads it so)
    unlearns_mapped: ClassVar[bool] = False

    @property
    def reads_media(self) -> bool:
        """Whether the model reads image/video/audio vectors from ``TrainData.item_features``
        (subclasses override it, as a class attribute or where a setting decides it)."""
        return False

    #: what a score rests on where it does not split by history item (explanations)
    unsplit_reason: ClassVar[str | None] = None

    def cheap_subsets(self) -> bool:
        """Whether this fitted model's :meth:`score_items` costs less than the whole catalog
        (:attr:`scores_subsets`, or what a model's fitted parts allow: the hybrid's)."""
        return self.scores_subsets

    def __init__(self, config: ModelConfig | dict | None = None, **overrides: Any):
        if isinstance(config, ModelConfig):
            config = config.model_dump()
        self.config = self.Config(**{**(config or {}), **overrides})
        self.user_vocab: Vocabulary | None = None
        self.item_vocab: Vocabulary | None = None
        self.train_matrix: sp.csr_matrix | None = None
        self.train_recency: sp.csr_matrix | None = None
        #: readable item fields (title, genres, ...) in vocabulary order, for explanations
        self.catalog: pd.DataFrame | None = None
        #: training loops of the last fit that a wall-clock cap stopped before the epochs or
        #: early stopping of the config did (``models.timecap``), one note each; empty when
        #: the fit is the one the config and seed describe
        self.time_capped_: list[str] = []
        #: how a warm start made this model from an earlier one (``warm_start``: from which
        #: version, how many users changed, what was refitted and kept); None after a fit
        self.warm_started_: dict[str, Any] | None = None

    # ---- learning -------------------------------------------------------------------
    def fit(self, data: TrainData) -> Self:
        self._take_data(data)
        self.time_capped_ = []
        self.warm_started_ = None
        self._fit(data)
        return self

    def _take_data(self, data: TrainData) -> None:
        self.user_vocab = data.user_vocab
        self.item_vocab = data.item_vocab
        self.train_matrix = data.matrix.tocsr()
        self.train_recency = data.recency.tocsr() if data.recency is not None else None
        cols = [c for c in CATALOG_COLUMNS if c in data.items.columns]
        self.catalog = data.items[cols].reset_index(drop=True)

    def warm_start(
        self, data: TrainData, max_share: float, source: str | None = None
    ) -> str | None:
        """Update this fitted model to ``data`` in place instead of fitting it again, where it
        can (:meth:`_warm_update`: the same catalog, and an update of rank at most
        ``max_share`` of the items, its cost relative to a fit); returns None when done, else
        why not (the model is then unchanged: fit it). Item features are taken to be those of
        the same catalog. ``source``: what it started from (a registry version id), recorded in
        ``warm_started_`` and the saved manifest."""
        done = self._warm_update(data, max_share)
        if isinstance(done, str):
            return done
        self._take_data(data)
        self.warm_started_ = {"from": source, **done}
        return None

    def _warm_update(self, data: TrainData, max_share: float) -> dict[str, Any] | str:
        """The learned state updated to ``data`` (the vocabularies and training matrix are
        :meth:`warm_start`'s to replace): what was done (users changed, rank), or why not.
        By default, models with an exact update of some users' rows
        (:class:`avrec.models.capabilities.UpdatesRows`)."""
        from avrec.models.capabilities import NotUpdatable, UpdatesRows

        if not isinstance(self, UpdatesRows):
            return f"{self.name} has no exact update"
        user_vocab, item_vocab, train = self.fitted_parts()
        if list(item_vocab.ids) != list(data.item_vocab.ids):
            return "the catalog changed"
        users = list(dict.fromkeys([*user_vocab.ids, *data.user_vocab.ids]))
        old = rows_for(train, user_vocab.lookup(users))
        new = rows_for(data.matrix.tocsr(), data.user_vocab.lookup(users))
        changed = np.flatnonzero(np.diff((old != new).tocsr().indptr) > 0)
        old, new = old[changed], new[changed]
        rank = self.update_rank(old, new)
        if rank > max_share * len(item_vocab):
            return share_exceeded(len(changed), rank, max_share, len(item_vocab))
        try:
            self.update_rows(old, new)
        except NotUpdatable as exc:
            return str(exc)
        return {"users_changed": len(changed), "rank": int(rank)}

    @abstractmethod
    def _fit(self, data: TrainData) -> None: ...

    def settled_config(self) -> dict[str, Any]:
        """A config for fitting this same model again on other data: the config, with the
        settings this fit chose for itself on validation data (fitted attributes, such as
        ALS's ``regularization_``) fixed, so that they are not chosen a second time."""
        return self.config.model_dump()

    @abstractmethod
    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Scores ``float32 [len(users), n_items]``; higher is better."""

    def score_items(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        items: np.ndarray,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """``float32 [len(users), c]``: the :meth:`score` of each row's items ``items[n]``
        (``int [len(users), c]`` item positions; ``-1``: none, scored 0). By default the whole
        catalog is scored and the items picked; models that can score a few columns for less
        (sparse-ease) override it with the same values."""
        scores = np.asarray(self.score(users, histories, queries), dtype=np.float32)
        items = np.asarray(items, dtype=np.int64)
        out = np.take_along_axis(scores, np.maximum(items, 0), axis=1)
        return np.where(items >= 0, out, 0.0).astype(np.float32)

    # ---- ranking --------------------------------------------------------------------
    def _require_fitted(self) -> None:
        self.fitted_parts()

    def fitted_parts(self) -> tuple[Vocabulary, Vocabulary, sp.csr_matrix]:
        """The user vocabulary, item vocabulary and training matrix of a fitted model
        (``RuntimeError`` before :meth:`fit` or :meth:`load`)."""
        if self.item_vocab is None or self.user_vocab is None or self.train_matrix is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return self.user_vocab, self.item_vocab, self.train_matrix

    def history_matrix(
        self, users: np.ndarray, histories: Sequence[Sequence[str] | None] | None = None
    ) -> sp.csr_matrix:
        """Rows of item interactions: a known user's training row, or the given history
        (which replaces it; oldest first) mapped through the item vocabulary (unknown items
        dropped). Values are recency ranks (1 = most recent); models that ignore order use
        ``histories > 0``."""
        _, item_vocab, train_matrix = self.fitted_parts()
        n_items = len(item_vocab)
        known = np.where(users >= 0, users, 0)
        source = self.train_recency if self.train_recency is not None else train_matrix
        if (
            histories is not None
            and len(histories) == len(users)
            and all(h is not None for h in histories)
        ):
            base = None  # every row given: the training rows are not read (a service request)
        else:
            base = source[known]
            base = sp.csr_matrix(base.multiply((users >= 0)[:, None]).astype(np.float32))
            base.eliminate_zeros()  # unknown users: truly empty rows
        if histories is None or all(h is None for h in histories):
            assert base is not None
            return base
        cols, vals, lengths = [], [], []
        for n, hist in enumerate(histories):
            if hist is None:
                assert base is not None
                a, b = base.indptr[n], base.indptr[n + 1]
                idx, rank = base.indices[a:b], base.data[a:b]
            else:
                idx = item_vocab.lookup(list(hist))[::-1]  # most recent first
                idx = idx[idx >= 0]
                idx, first = np.unique(idx, return_index=True)  # a repeated item counts as recent
                rank = first + 1
            cols.append(idx)
            vals.append(rank)
            lengths.append(len(idx))
        if not cols:
            assert base is not None
            return base
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        return sp.csr_matrix(
            (
                np.concatenate(vals).astype(np.float32),
                np.concatenate(cols).astype((base if base is not None else source).indices.dtype),
                indptr,
            ),
            shape=(len(cols), n_items),
        )

    def rank(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
        queries: Sequence[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores. ``exclude``: CSR rows of items to drop;
        ``candidates``: boolean ``[n, n_items]`` (or ``[n_items]``) mask of allowed items."""
        return top_k(
            self.masked_scores(
                users, histories, exclude=exclude, candidates=candidates, queries=queries
            ),
            k,
        )

    def masked_scores(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Scores with excluded and non-candidate items (and NaN) set to ``-inf``."""
        scores = np.array(self.score(users, histories, queries), dtype=np.float32, copy=True)
        scores[~np.isfinite(scores)] = -np.inf
        if exclude is not None and exclude.nnz:
            r, c = exclude.nonzero()
            scores[r, c] = -np.inf
        if candidates is not None:
            scores[~np.broadcast_to(candidates, scores.shape)] = -np.inf
        return scores

    def recommend(
        self,
        user_ids: Sequence[str | None],
        k: int = 10,
        *,
        histories: Sequence[Sequence[str] | None] | None = None,
        candidates: Sequence[Sequence[str] | None] | None = None,
        queries: Sequence[str | None] | None = None,
        exclude_seen: bool | Sequence[bool] = True,
        explain: bool = False,
        batch_size: int = 1024,
    ) -> Recommendations:
        """Recommend for a batch of requests by external IDs (see module docstring).
        ``exclude_seen`` may be one flag or one per request; ``explain`` adds a short
        explanation per item, from :meth:`contributions` where the model supports it."""
        user_vocab, item_vocab, _ = self.fitted_parts()
        user_ids = list(user_ids)
        out_items: list[list[str]] = []
        out_scores: list[list[float]] = []
        out_expl: list[list[str]] = []
        for start in range(0, len(user_ids), batch_size):
            stop = min(start + batch_size, len(user_ids))
            chunk = [u if u is not None else "" for u in user_ids[start:stop]]
            users = user_vocab.lookup(chunk)
            hist = self.history_matrix(users, histories[start:stop] if histories else None)
            mask = None
            if candidates is not None and any(c is not None for c in candidates[start:stop]):
                mask = np.ones((stop - start, len(item_vocab)), dtype=np.bool_)
                for n, cand in enumerate(candidates[start:stop]):
                    if cand is not None:
                        mask[n] = False
                        idx = item_vocab.lookup(list(cand))
                        mask[n, idx[idx >= 0]] = True
            q = queries[start:stop] if queries is not None else None
            flags = (
                np.full(stop - start, bool(exclude_seen))
                if isinstance(exclude_seen, bool)
                else np.asarray(exclude_seen[start:stop], dtype=bool)
            )
            exclude = sp.diags(flags.astype(np.float32)) @ hist if flags.any() else None
            idx, top = self.rank(users, hist, k, exclude=exclude, candidates=mask, queries=q)
            ids = item_vocab.ids
            picked = []
            for row_idx, row_scores in zip(idx, top, strict=True):
                keep = np.isfinite(row_scores)
                picked.append(row_idx[keep])
                out_items.append([str(i) for i in ids[row_idx[keep]]])
                out_scores.append([float(s) for s in row_scores[keep]])
            if explain:
                out_expl += self.explain_batch(users, hist, picked, q)
        return Recommendations(user_ids, out_items, out_scores, out_expl if explain else None)

    # ---- growing the catalog ----------------------------------------------------------
    def add_items(self, items: pd.DataFrame) -> list[str]:
        """Make new catalog items recommendable without retraining (content-aware models);
        returns the IDs that were added (already known IDs are skipped)."""
        raise NotImplementedError(f"{self.name} cannot add items without retraining")

    def _extend_catalog(self, items: pd.DataFrame) -> pd.DataFrame:
        """Grow vocabulary, training matrices and catalog by the unknown items of ``items``;
        returns those rows."""
        _, item_vocab, train_matrix = self.fitted_parts()
        new = items[~items["item_id"].isin(set(item_vocab.ids))].drop_duplicates("item_id")
        if new.empty:
            return new
        self.item_vocab = Vocabulary([*item_vocab.ids, *new["item_id"]])
        grow = (train_matrix.shape[0], len(self.item_vocab))
        self.train_matrix = sp.csr_matrix(
            (train_matrix.data, train_matrix.indices, train_matrix.indptr),
            shape=grow,
        )
        if self.train_recency is not None:
            r = self.train_recency
            self.train_recency = sp.csr_matrix((r.data, r.indices, r.indptr), shape=grow)
        if self.catalog is not None:
            cols = list(self.catalog.columns)
            add = new.reindex(columns=cols)
            self.catalog = pd.concat([self.catalog, add], ignore_index=True)
        return new

    # ---- explanations ---------------------------------------------------------------
    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray | None:
        """``[len(items), n_history_items]``: how much each history item (in the order of
        ``history.indices``) adds to each item's score, for models whose score is a sum over
        the history; None for models without such a decomposition. ``user``: the training
        user index (-1: unknown), for models that weigh a known user's history items."""
        return None

    def explain(
        self,
        history: sp.csr_matrix,
        items: np.ndarray,
        query: str | None = None,
        user: int = -1,
        contrib: np.ndarray | None = None,
    ) -> list[str]:
        """One short sentence per item of ``items`` for a request with ``history`` (``user``:
        the training user index, -1 for an unknown one; ``contrib``: :meth:`contributions`
        of these items when already computed)."""
        from avrec.models.explain import explain_items

        return explain_items(self, history, items, query, user, contrib)

    def explain_batch(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        items: list[np.ndarray],
        queries: Sequence[str | None] | None = None,
    ) -> list[list[str]]:
        """:meth:`explain` for each row of a batch (``items[n]``: row ``n``'s recommended
        item indices); models override it to share work across the rows."""
        return [
            self.explain(
                csr_row(histories, n), row_items, queries[n] if queries else None, int(users[n])
            )
            for n, row_items in enumerate(items)
        ]

    # ---- persistence ----------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (besides vocabularies and the training matrix)."""
        return {}

    def load_state_arrays(  # noqa: B027 (a hook: models without arrays need no override)
        self, state: dict[str, np.ndarray], path: Path
    ) -> None:
        """Restore what :meth:`state_arrays` returned (``path``: the model directory)."""

    def _save_extra(self, path: Path) -> None:  # noqa: B027 (a hook, a no-op by default)
        """Hook for models that save more than arrays (e.g. torch weights as safetensors)."""

    def manifest_extra(self) -> dict[str, Any]:
        """What a model adds to its folder's ``manifest.json`` (e.g. the parts it saved)."""
        return {}

    def save(self, path: str | Path) -> Path:
        user_vocab, item_vocab, train_matrix = self.fitted_parts()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        from avrec import __version__

        m = train_matrix.tocsr()
        manifest = {
            "model": self.name,
            "config": self.config.model_dump(mode="json"),
            "fitted": {
                "time_capped_": list(self.time_capped_),
                **({"warm_started_": self.warm_started_} if self.warm_started_ else {}),
            },
            #: what it was trained on, so that models of other data have other manifests (a
            #: registry version id hashes the manifest)
            "data_fingerprint": _fingerprint(m, user_vocab.ids, item_vocab.ids),
            "avrec_version": __version__,
            "format": 1,
            **self.manifest_extra(),
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=2))
        user_vocab.save(path / "users.json")
        item_vocab.save(path / "items.json")
        state: dict[str, Any] = {f"state__{k}": v for k, v in self.state_arrays().items()}
        if self.train_recency is not None:
            r = self.train_recency.tocsr()
            state.update(recency_data=r.data, recency_indices=r.indices, recency_indptr=r.indptr)
        np.savez(
            path / STATE,
            train_data=m.data,
            train_indices=m.indices,
            train_indptr=m.indptr,
            train_shape=np.array(m.shape),
            **state,
        )
        if self.catalog is not None:
            self.catalog.to_json(path / CATALOG, orient="records", lines=True, force_ascii=False)
        self._save_extra(path)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        catalog_chunk: int | None = None,
        map_from: int | None = None,
        catalog: pd.DataFrame | None = None,
        read_catalog: bool = True,
    ) -> Recommender:
        """Load any saved model; the class comes from the manifest's model name.
        ``catalog_chunk``: parse the catalog this many lines at a time, so that other threads
        get the interpreter between chunks (one parse holds it throughout: tens of
        milliseconds for ten thousand items); used where a model is loaded beside one serving
        requests (``service/follow.py``). ``map_from``: the saved state's arrays of at least
        this many bytes are mapped read-only from the file, not read (``data.npz.read_npz``);
        for a model that is only scored, such as one loaded to be served. ``catalog``: the
        folder's catalog already read (from a file with the same bytes), used as it is where it
        has one row per item of the folder (else the file is read). ``read_catalog`` False:
        none is read (for work that needs no item fields)."""
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise FileNotFoundError(f"{path}: not a saved avrec model (no {MANIFEST})")
        manifest = json.loads(manifest_file.read_text())
        klass = get_model_class(manifest["model"]) if cls is Recommender else cls
        model = klass(manifest["config"])
        fitted = manifest.get("fitted", {})
        model.time_capped_ = list(fitted.get("time_capped_", []))
        model.warm_started_ = fitted.get("warm_started_")
        model.user_vocab = Vocabulary.load(path / "users.json")
        model.item_vocab = Vocabulary.load(path / "items.json")
        z = read_npz(path / STATE, map_from)
        model.train_matrix = sp.csr_matrix(
            (z["train_data"], z["train_indices"], z["train_indptr"]),
            shape=tuple(z["train_shape"]),
        )
        state = {k.removeprefix("state__"): v for k, v in z.items() if k.startswith("state__")}
        if "recency_data" in z:
            model.train_recency = sp.csr_matrix(
                (z["recency_data"], z["recency_indices"], z["recency_indptr"]),
                shape=tuple(z["train_shape"]),
            )
        if catalog is not None and len(catalog) == len(model.item_vocab):
            model.catalog = catalog
        elif read_catalog and (path / CATALOG).is_file():
            read = {"orient": "records", "lines": True, "dtype": {"item_id": str}}
            if catalog_chunk is None:
                model.catalog = pd.read_json(path / CATALOG, **read)
            else:
                with pd.read_json(path / CATALOG, chunksize=catalog_chunk, **read) as chunks:
                    model.catalog = pd.concat(list(chunks), ignore_index=True)
        model.load_state_arrays(state, path)
        return model
