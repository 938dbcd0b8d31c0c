"""Two-tower model (transfer learning) over frozen pretrained item vectors.

Item tower: a trained projection of each item's frozen content vector (MiniLM text + genres)
plus an ID embedding for items with interactions, dropped (whole embedding, probability
``id_dropout``) during training so that the projection alone -- all a cold item has -- ranks
well. User tower: attention pooling of the history's item vectors, then a linear map, so a
score is exactly ``sum_i a_i (W h_i) . v_j`` -- the per-history-item terms are the explanation.
With ``user_attributes`` and a users table (age, gender, occupation, zip, ...), the user's
attribute vector (:mod:`avrec.models.neural.user_attributes`) adds ``(A x_u) . v_j`` (zero for users
without attributes). New catalog items join without retraining through ``add_items``: encoded
like the training items, they pass through the trained item tower as cold items.
Training: a random share (``target_share``) of a user sample's items held out as targets and
scored against the full catalog from the rest (a multinomial likelihood; for catalogs over
``full_softmax_max`` items, one target and a sampled softmax with shared random negatives), the
input history masked out of the negatives; early stopping on the NDCG of one held-out item
per validation user. Requests in natural language are matched zero-shot against the items'
text vectors.
With ``finetune_text_layers`` > 0 the top layers of the English text encoder are fine-tuned after
the frozen phase (:mod:`avrec.models.neural.text_finetune`); the item tower then reads the
fine-tuned text vectors, and new texts and requests go through the fine-tuned encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.encoders.text import TEXT_DIM
from avrec.models.base import Recommender, TrainData
from avrec.models.neural.towers import (
    ItemTowerCatalogMixin,
    NeuralConfig,
    QueryMixin,
    WeightAverage,
    content_inputs,
    content_recipe,
    held_out_ndcg,
    item_tower_class,
    load_numpy_state,
    multi_target_loss,
    ordered_histories,
    pad,
    sampled_softmax_loss,
    state_to_numpy,
    torch_threads,
    without_media,
)
from avrec.models.neural.user_attributes import UserAttributes
from avrec.models.timecap import TimeCap


class TwoTowerConfig(NeuralConfig):
    #: the settings below were chosen by the measurements in docs/benchmarks.md ("Settings
    #: behind the defaults") and the README's two-tower paragraph
    dim: int = 128
    #: 0.2 and 0.035 go with ``item_bias`` and ``weight_average``
    id_dropout: float = 0.2
    temperature: float = 0.035
    #: a learned logit bias per item (models.neural item tower): a linear map of its content
    #: plus, for warm items, a scalar dropped with the ID embedding; the score adds
    #: ``temperature * b_j``. It learns the popularity that the dot product would otherwise
    #: have to carry in the vectors' directions
    item_bias: bool = True
    #: history items pooled per training example (a random sample of a longer history)
    max_history: int = 256
    #: the most recent history items pooled per user when scoring and validating; the
    #: attention pooling carries over to histories longer than the training samples
    score_history: int = Field(2048, ge=1)
    samples_per_user: int = 8
    #: share of a training example's history held out as its targets, scored together by a
    #: multinomial likelihood (models.neural.multi_target_loss, as Mult-VAE's); 0: one target
    #: per example. Catalogs over ``full_softmax_max`` items (sampled softmax) keep one target.
    target_share: float = Field(0.3, ge=0.0, lt=1.0)
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    max_epochs: int = 40
    #: validation (one held-out item per user) moves from epoch to epoch, so training goes on
    #: through a few flat epochs; the untruncated NDCG of the held-out item
    #: (:func:`models.neural.towers.held_out_ndcg`) is the smoothest signal
    patience: int = 8
    #: decay of a moving average of the weights (models.neural.WeightAverage, updated every
    #: step, its decay warming up from 0.1) that is validated and kept instead of the live
    #: weights; 0: off. It goes with ``item_bias`` and the lower temperature: see the README's
    #: two-tower paragraph for the figures of each part
    weight_average: float = Field(0.99, ge=0.0, lt=1.0)
    sampled_negatives: int = 8192
    #: add the users' attributes (users table: age, gender, occupation, zip, ...) to the user tower
    user_attributes: bool = False
    #: a categorical attribute value gets its own column when at least this many users have it
    user_attribute_min_count: int = 5
    #: while training, a user's whole attribute vector is dropped with this probability, so the
    #: history is not left unused
    user_attribute_dropout: float = 0.5
    #: image, video and audio vectors in the item tower (when the training data has them:
    #: ``TrainData.item_features``): "auto" keeps them when they rank items hidden from two
    #: short trainings better by content alone (``_media_helps``; on ml-100k the fit takes
    #: 1.7-2.4 times as long); "on" / "off" force it
    media: Literal["auto", "on", "off"] = "auto"
    #: fine-tune the top N layers of the English text encoder after the frozen phase
    #: (0 = frozen pretrained text vectors; see avrec.models.neural.text_finetune)
    finetune_text_layers: int = Field(0, ge=0, le=6)
    #: epochs of the frozen phase before fine-tuning (None: until it stops by itself)
    finetune_after_epochs: int | None = None
    #: 2: about what the 300 s wall-clock budget of before let run on ml-100k on 2 CPU cores
    #: (README), now fixed so the fit does not depend on the machine's speed
    finetune_epochs: int = 2
    finetune_lr: float = 5e-5
    finetune_tower_lr: float = 3e-4
    #: optional wall-clock cap on the fine-tuning phase (recorded in ``time_capped_`` when it
    #: stops it); None: ``finetune_epochs`` and ``patience`` only
    finetune_max_seconds: float | None = None
    #: target items per step whose text runs through the top layers with a gradient
    finetune_batch_items: int = 64
    finetune_max_tokens: int = 256


#: the media choice (``media="auto"``): items hidden from its trainings, at least, and the
#: epochs each of its two trainings runs at most
MIN_PROBE_ITEMS = 5
PROBE_EPOCHS = 10

#: padded history entries (rows x longest history) pooled at once when scoring
SCORE_BUDGET = 1 << 18


def _chunks(lengths: list[int], budget: int) -> list[np.ndarray]:
    """Row indices in groups of similar history length whose padded size (rows x longest)
    stays within ``budget`` (at least one row per group)."""
    order = np.argsort(lengths, kind="stable")
    groups, start = [], 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop + 1 - start) * max(lengths[order[stop]], 1) <= budget:
            stop += 1
        groups.append(order[start:stop])
        start = stop
    return groups


def _user_tower_class():
    import torch
    from torch import nn

    class TwoTowerNet(nn.Module):
        def __init__(self, items, dim: int, n_attributes: int = 0):
            super().__init__()
            self.items = items
            self.attn = nn.Linear(dim, 1)
            self.user = nn.Linear(dim, dim, bias=False)
            self.n_attributes = n_attributes
            if n_attributes:
                self.attrs = nn.Linear(n_attributes, dim, bias=False)
                nn.init.zeros_(self.attrs.weight)

        def attention(self, hist_vecs, mask):
            logits = self.attn(hist_vecs).squeeze(-1).masked_fill(~mask, -1e9)
            return torch.softmax(logits, dim=-1) * mask.any(dim=-1, keepdim=True)

        def users(self, hist, mask, attrs=None, table=None):
            """``table``: every item's vector, already computed this step (the history is
            then looked up in it rather than run through the item tower again)."""
            idx = hist.clamp(min=0)
            h = self.items(idx) if table is None else table[idx]
            a = self.attention(h, mask)
            out = self.user((a[..., None] * h).sum(dim=1))
            return out + self.attrs(attrs) if self.n_attributes and attrs is not None else out

    return TwoTowerNet


class TwoTower(ItemTowerCatalogMixin, QueryMixin, Recommender):
    name = "two-tower"
    Config = TwoTowerConfig
    config: TwoTowerConfig
    content_aware = True
    #: the fine-tuned text encoder (models.text_finetune), or its saved layers until first use
    text_tuner = None
    tuner_state: dict[str, np.ndarray] | None = None

    @property
    def reads_media(self) -> bool:
        return self.config.media != "off"

    def _build(self, content: np.ndarray, warm: np.ndarray):
        import torch

        torch.manual_seed(self.config.seed)
        items = item_tower_class()(
            content, warm, self.config.dim, self.config.id_dropout, self.config.item_bias
        )
        attributes = getattr(self, "attributes", None)
        n_attributes = attributes.dim if attributes else 0
        return _user_tower_class()(items, self.config.dim, n_attributes)

    def _fit_attributes(self, data: TrainData) -> None:
        """The attribute encoding (fitted on the users with training interactions) and the
        attribute vectors of every user in the vocabulary."""
        self.attributes, self.user_attrs = None, None
        if not self.config.user_attributes or data.users is None:
            return
        active = set(data.interactions["user_id"].astype(str))
        users = data.users[data.users["user_id"].astype(str).isin(active)]
        enc = UserAttributes(self.config.user_attribute_min_count).fit(users)
        if enc.dim:
            self.attributes = enc
            self.user_attrs = enc.user_matrix(data.users, data.user_vocab.ids)

    def _attrs_of(self, users: np.ndarray) -> np.ndarray | None:
        """Attribute vectors of training-vocabulary users (zeros for -1), or None."""
        if self.user_attrs is None:
            return None
        users = np.asarray(users, dtype=np.int64)
        known = (users >= 0) & (users < len(self.user_attrs))
        out = np.zeros((len(users), self.user_attrs.shape[1]), dtype=np.float32)
        out[known] = self.user_attrs[users[known]]
        return out

    def _fit(self, data: TrainData) -> None:
        with torch_threads(self.config.threads):
            self._train(data)

    def _train(self, data: TrainData) -> None:
        c = self.config
        rng = np.random.default_rng(c.seed)
        content = content_inputs(data, c.encoder)
        self.recipe = content_recipe(data, content)
        self._fit_attributes(data)
        m = (data.matrix > 0).tocsr()
        warm = np.asarray(m.sum(axis=0)).ravel() > 0
        rows = [m.indices[m.indptr[u] : m.indptr[u + 1]] for u in range(m.shape[0])]
        val_users = np.array([u for u, r in enumerate(rows) if len(r) >= 3], dtype=np.int64)
        val_items = np.array([rng.choice(rows[u]) for u in val_users], dtype=np.int64)
        held = dict(zip(val_users.tolist(), val_items.tolist(), strict=True))
        train_rows = [r[r != held[u]] if u in held else r for u, r in enumerate(rows)]
        users = np.array([u for u, r in enumerate(train_rows) if len(r) >= 2], dtype=np.int64)
        self.media_used = bool(int(self.recipe["recipe_media_width"])) and c.media != "off"
        self.media_probe: dict[bool, float] | None = None
        if self.media_used and c.media == "auto":
            self.media_used = self._media_helps(content, warm, train_rows, val_users, val_items)
        if not self.media_used:  # the very model that data without media would give
            content = without_media(content, self.recipe)
        self.net = self._build(content, warm)
        self._epochs(train_rows, users, val_users, val_items, rng)
        self.text_tuner = None
        if c.finetune_text_layers:
            from avrec.models.neural.text_finetune import finetune_two_tower

            self.text_tuner = finetune_two_tower(
                self, data, train_rows, users, val_users, val_items, rng
            )
        self.text_dim = (
            int(data.item_features["text"].shape[1])
            if "text" in data.item_features and data.item_features["text"].shape[1]
            else TEXT_DIM
        )
        self._cache()

    def _media_helps(
        self,
        content: np.ndarray,
        warm: np.ndarray,
        train_rows,
        val_users: np.ndarray,
        val_items: np.ndarray,
    ) -> bool:
        """Whether the media blocks place unseen items better than the text alone. A tenth of
        the warm items (at least :data:`MIN_PROBE_ITEMS`) is hidden from two short trainings,
        with and without the media blocks; each ranks the hidden items by content alone (as
        cold items are ranked) for the users who had them, and NDCG@10 decides. Warm
        held-out items cannot decide it: the ID embeddings, and the text of items trained on,
        carry those anyway. Its random draws are its own: the final training is not moved."""
        from avrec.metrics import ndcg

        c = self.config
        rng = np.random.default_rng([c.seed, 1])
        candidates = np.flatnonzero(warm)
        if len(candidates) < 2 * MIN_PROBE_ITEMS:
            return True
        probe = np.sort(
            rng.choice(candidates, max(MIN_PROBE_ITEMS, len(candidates) // 10), replace=False)
        )
        hidden = np.zeros(len(content), bool)
        hidden[probe] = True
        rows = [r[~hidden[r]] for r in train_rows]
        users = np.array([u for u, r in enumerate(rows) if len(r) >= 2], dtype=np.int64)
        keep = ~hidden[val_items]
        tests = np.array(
            [
                u
                for u, (r, t) in enumerate(zip(rows, train_rows, strict=True))
                if len(r) and hidden[t].any()
            ],
            dtype=np.int64,
        )
        if not len(tests):
            return True
        score = {}
        for use in (True, False):
            inputs = content if use else without_media(content, dict(self.recipe))
            self.net = self._build(inputs, warm & ~hidden)
            self._epochs(rows, users, val_users[keep], val_items[keep], rng, PROBE_EPOCHS)
            s = self._score_sequences(
                [rows[u][-c.score_history :] for u in tests],
                self._attrs_of(tests),
                content_only=True,
            )[:, probe]
            ranked = probe[np.argsort(-s, axis=1, kind="stable")[:, :10]]
            score[use] = float(
                np.mean(
                    [
                        ndcg(ranked[n], set(train_rows[u][hidden[train_rows[u]]].tolist()), 10)
                        for n, u in enumerate(tests)
                    ]
                )
            )
        self.media_probe = score
        return score[True] > score[False]

    def _epochs(
        self,
        train_rows,
        users: np.ndarray,
        val_users: np.ndarray,
        val_items: np.ndarray,
        rng: np.random.Generator,
        max_epochs: int | None = None,
    ) -> float:
        """Train ``self.net`` (the frozen phase) with early stopping, for at most
        ``max_epochs`` (None: the config's); leaves the best epoch's weights in it and returns
        that epoch's validation NDCG."""
        import torch

        c = self.config
        n_items = len(self.net.items.content)
        opt = torch.optim.AdamW(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        average = WeightAverage(self.net, c.weight_average)
        best, best_state, bad = -1.0, None, 0
        cap = TimeCap(
            c.time_budget_s, "two-tower" if max_epochs is None else "two-tower media probe"
        )
        self.history_log: list[float] = []
        frozen_epochs = (
            c.max_epochs
            if not c.finetune_text_layers or c.finetune_after_epochs is None
            else c.finetune_after_epochs
        )
        frozen_epochs = frozen_epochs if max_epochs is None else min(frozen_epochs, max_epochs)
        # several targets per example need the full softmax; the sampled one takes one
        share = c.target_share if n_items <= c.full_softmax_max else 0.0
        for epoch in range(frozen_epochs):
            self.net.train()
            sample = np.repeat(users, c.samples_per_user)
            rng.shuffle(sample)
            cut = False
            for start in range(0, len(sample), c.batch_size):
                batch = sample[start : start + c.batch_size]
                targets, hists = [], []
                for u in batch:
                    r = train_rows[u]
                    n_t = min(max(1, round(share * len(r))), len(r) - 1)
                    t = (
                        rng.choice(len(r), n_t, replace=False)
                        if n_t > 1
                        else [rng.integers(len(r))]
                    )
                    rest = np.delete(r, t)
                    if len(rest) > c.max_history:
                        rest = rng.choice(rest, c.max_history, replace=False)
                    targets.append(r[t])
                    hists.append(rest)
                hist = torch.from_numpy(pad(hists, -1))
                mask = hist >= 0
                attrs = self._attrs_of(batch)
                if attrs is not None and c.user_attribute_dropout > 0:
                    attrs *= rng.random((len(attrs), 1)) >= c.user_attribute_dropout
                attrs_t = None if attrs is None else torch.from_numpy(attrs)
                if n_items <= c.full_softmax_max:
                    # one pass over the catalog serves both towers; the history shares the
                    # table's ID-dropout draw (per-position draws measured worse)
                    table, bias = self.net.items(with_bias=True)
                    u_vec = self.net.users(hist, mask, attrs_t, table)
                    logits = u_vec @ table.T / c.temperature + bias
                    logits = logits.masked_fill(
                        torch.zeros_like(logits, dtype=torch.bool).scatter_(
                            1, hist.clamp(min=0), mask
                        ),
                        -1e9,
                    )
                    loss = multi_target_loss(logits, targets)
                else:
                    tgt = torch.from_numpy(np.array([t[0] for t in targets], dtype=np.int64))
                    loss = sampled_softmax_loss(
                        self.net.items,
                        self.net.users(hist, mask, attrs_t),
                        tgt,
                        n_items,
                        c.sampled_negatives,
                        c.temperature,
                        rng,
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                average.update(self.net)
                if cap.reached():
                    cut = True
                    break  # the cap covers training; the epoch is validated below
            average.swap_in(self.net)  # with weight averaging, the average is validated and kept
            hr = self.validation_hit_rate(train_rows, val_users, val_items)
            self.history_log.append(hr)
            if hr > best:
                best, bad = hr, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            else:
                bad += 1
            average.swap_out(self.net)
            if bad >= c.patience:
                break
            if cap.stop(epoch, frozen_epochs, cut, self.time_capped_):
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        return best

    def validation_hit_rate(self, rows, val_users: np.ndarray, val_items: np.ndarray) -> float:
        if not len(val_users):
            return 0.0
        hists = [rows[u][-self.config.score_history :] for u in val_users]
        scores = self._score_sequences(hists, self._attrs_of(val_users))
        for n, h in enumerate(hists):
            scores[n, h] = -np.inf
        return held_out_ndcg(scores, val_items)

    def _cache(self) -> None:
        import torch

        self.net.eval()
        with torch.no_grad():
            vectors, bias = self.net.items(with_bias=True)
        self.item_vectors = vectors.numpy()
        #: each item's logit bias on the scale of ``u . v`` (the training logits are
        #: ``u . v / temperature + b``, so the scores are ``u . v + temperature * b``)
        self.item_bias = (self.config.temperature * bias).numpy().astype(np.float32)
        #: the catalog's average item vector, that explanation terms are measured from
        self.mean_item_vector = self.item_vectors.mean(axis=0)

    def _user_parts(self, hists: Sequence[np.ndarray]):
        """(attention weights [n, L], mapped history vectors [n, L, d], padded indices)."""
        import torch

        hist = torch.from_numpy(pad(hists, -1))
        mask = hist >= 0
        self.net.eval()
        with torch.no_grad():
            h = torch.from_numpy(self.item_vectors)[hist.clamp(min=0)]
            a = self.net.attention(h, mask)
            mapped = self.net.user(h)
        return a.numpy(), mapped.numpy(), hist.numpy()

    def _score_sequences(
        self,
        hists: Sequence[np.ndarray],
        attrs: np.ndarray | None = None,
        content_only: bool = False,
    ) -> np.ndarray:
        import torch

        if not hasattr(self, "item_vectors") or self.net.training:
            self._cache()
        items, bias = self.item_vectors, self.item_bias
        if content_only:  # as cold items: no ID embedding, no ID bias
            with torch.no_grad():
                tower = self.net.items
                items = torch.nn.functional.normalize(tower.proj(tower.content), dim=-1).numpy()
                bias = (self.config.temperature * tower.item_content_bias()).numpy()
        users = np.zeros((len(hists), self.item_vectors.shape[1]), np.float32)
        for rows in _chunks([len(h) for h in hists], SCORE_BUDGET):
            a, mapped, _ = self._user_parts([hists[n] for n in rows])
            users[rows] = (a[..., None] * mapped).sum(axis=1)
        if attrs is not None and self.net.n_attributes:
            users = users + attrs @ self.net.attrs.weight.detach().numpy().T
        return (users @ items.T + bias[None, :]).astype(np.float32)

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        hists = ordered_histories(histories.tocsr(), self.config.score_history)
        scores = (
            self._score_sequences(hists, self._attrs_of(users))
            if len(hists)
            else np.zeros((0, len(self.item_vectors)))
        )
        if queries is not None and any(queries):
            scores = self.blend_queries(scores, np.array([len(h) > 0 for h in hists]), queries)
        return scores.astype(np.float32)

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        """Exact terms ``a_i (W h_i) . (v_j - mean_v)``, in the order of ``history.indices``:
        how much more history item i lends item j than the catalog's average item. A softmax
        model's scores mean something only relative to other items' (adding the same amount
        to every item's score changes no probability, and training leaves that level where it
        happens to fall, often below zero), so the terms are measured from the average item;
        the part taken off, ``a_i (W h_i) . mean_v`` summed, is the same for every item and
        changes no ranking. Also left out, as no history item's: the user attributes' term,
        where the model has one, and the item's own logit bias (``item_bias[j]``); the score
        is these terms' sum plus those and the constant. Items older than the
        ``score_history`` most recent are not pooled and contribute 0."""
        row = sp.csr_matrix(history[:1])
        idx = row.indices
        pooled = ordered_histories(row, self.config.score_history)[0]
        out = np.zeros((len(items), len(idx)), np.float32)
        if len(pooled):
            a, mapped, _ = self._user_parts([pooled])
            centred = self.item_vectors[items] - self.mean_item_vector
            terms = a[0][:, None] * (mapped[0] @ centred.T)
            where = {int(j): n for n, j in enumerate(idx)}
            out[:, [where[int(j)] for j in pooled]] = terms.T
        return out

    def add_items(self, items) -> list[str]:
        added = super().add_items(items)
        if added:
            self._cache()
        return added

    def text_vectors(self, items) -> np.ndarray:
        """Text vectors of (new) catalog rows as the item tower reads them: from the
        fine-tuned encoder when the model has one, else the pretrained one."""
        from avrec.models.neural.text_finetune import text_vectors

        return text_vectors(self, items)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        from avrec.models.neural.text_finetune import tuner_of

        tuner = tuner_of(self)  # fine-tuned item text: queries go through the same encoder
        return (
            tuner.encode_texts(list(queries))
            if tuner is not None
            else super().encode_queries(queries)
        )

    def state_arrays(self) -> dict[str, np.ndarray]:
        from avrec.models.neural.text_finetune import tuner_state

        attrs = {}
        if self.attributes is not None:
            attrs = {"user_attrs": self.user_attrs, **self.attributes.state("attr_")}
        return {
            **{f"net__{k}": v for k, v in state_to_numpy(self.net).items()},
            "text_dim": np.array(self.text_dim),
            "media_used": np.array(self.media_used),
            **self.recipe,
            **attrs,
            **tuner_state(self),
        }

    def load_state_arrays(self, state, path) -> None:
        self.attributes, self.user_attrs = None, None
        if "user_attrs" in state:
            self.attributes = UserAttributes.from_state(state, "attr_")
            self.user_attrs = np.asarray(state["user_attrs"], np.float32)
        content = state["net__items.content"]
        if "net__items.id_bias.weight" not in state:  # saved before item biases existed
            self.config = self.config.model_copy(update={"item_bias": False})
        self.net = self._build(content, state["net__items.warm"] > 0)
        load_numpy_state(self.net, state, "net__")
        self.text_dim = int(state["text_dim"])
        self.media_used = bool(state["media_used"]) if "media_used" in state else False
        self._recipe_from_state(state, content)
        self.text_tuner, self.tuner_state = (
            None,
            {k: v for k, v in state.items() if k.startswith("textft__")},
        )
        self._cache()
