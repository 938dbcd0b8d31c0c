"""Sequential model: a causal transformer over the time-ordered history of item vectors.

Items enter through the same item tower as the two-tower model (frozen pretrained content
vectors through a trained projection, plus a dropped-out ID embedding), so the model is
inductive: an item without interactions is represented by its content alone, both in a
history and as a candidate. Trained to predict each next item (softmax over the catalog;
sampled for large catalogs), early stopping on HR@10 of each user's last training item.
Explanations: occlusion -- how much each of the most recent history items adds to the score
(score with the full history minus score without that item).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp

from avrec.encoders.text import TEXT_DIM
from avrec.models.base import Recommender, TrainData
from avrec.models.neural.towers import (
    ItemTowerCatalogMixin,
    NeuralConfig,
    QueryMixin,
    content_inputs,
    content_recipe,
    hit_rate,
    item_tower_class,
    load_numpy_state,
    ordered_histories,
    sampled_softmax_loss,
    state_to_numpy,
    torch_threads,
    without_media,
)
from avrec.models.timecap import TimeCap


class SequentialConfig(NeuralConfig):
    #: image, video and audio vectors in the item tower when the training data has them
    #: ("on"); off by default: unlike the two-tower, this model has no validated choice
    media: Literal["off", "on"] = "off"
    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    id_dropout: float = 0.3
    max_len: int = 50
    temperature: float = 0.1
    batch_size: int = 128
    lr: float = 2e-3
    max_epochs: int = 60
    patience: int = 5
    #: training windows drawn per user and epoch (each ends at a random point of the history);
    #: more predict the next item better but the random splits worse (docs/benchmarks.md)
    windows_per_user: int = 1
    sampled_negatives: int = 4096
    #: most recent history items tested by occlusion for explanations
    explain_last: int = 10


def _net_class():
    import torch
    from torch import nn

    class SequentialNet(nn.Module):
        def __init__(self, items, dim, layers, heads, dropout, max_len):
            super().__init__()
            self.items = items
            self.pos = nn.Embedding(max_len, dim)
            nn.init.normal_(self.pos.weight, std=0.02)
            layer = nn.TransformerEncoderLayer(
                dim, heads, dim * 2, dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.drop = nn.Dropout(dropout)

        def forward(self, seq, projected=None):
            """``seq`` [n, L] right-padded with -1 -> outputs [n, L, d] (causal);
            ``projected``: the item tower's projection of the catalog's content, already
            computed this step (see the item tower's ``forward``)."""
            length = seq.shape[1]
            x = self.items(seq.clamp(min=0), projected) * (seq >= 0)[..., None]
            x = self.drop(x + self.pos(torch.arange(length)))
            mask = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
            out = self.norm(self.encoder(x, mask=mask, is_causal=True))
            return nn.functional.normalize(out, dim=-1)

    return SequentialNet


def right_pad(seqs: Sequence[np.ndarray], width: int | None = None) -> np.ndarray:
    width = width or max([len(s) for s in seqs] + [1])
    out = np.full((len(seqs), width), -1, dtype=np.int64)
    for n, s in enumerate(seqs):
        out[n, : len(s)] = s[-width:]
    return out


class Sequential(ItemTowerCatalogMixin, QueryMixin, Recommender):
    name = "sequential"
    Config = SequentialConfig
    config: SequentialConfig
    content_aware = True

    @property
    def reads_media(self) -> bool:
        return self.config.media != "off"

    def _build(self, content: np.ndarray, warm: np.ndarray):
        import torch

        c = self.config
        torch.manual_seed(c.seed)
        items = item_tower_class()(content, warm, c.dim, c.id_dropout)
        return _net_class()(items, c.dim, c.layers, c.heads, c.dropout, c.max_len)

    def _fit(self, data: TrainData) -> None:
        with torch_threads(self.config.threads):
            self._train(data)

    def _train(self, data: TrainData) -> None:
        import torch

        c = self.config
        rng = np.random.default_rng(c.seed)
        content = content_inputs(data, c.encoder)
        self.recipe = content_recipe(data, content)
        if c.media != "on":
            content = without_media(content, self.recipe)
        m = (data.matrix > 0).tocsr()
        warm = np.asarray(m.sum(axis=0)).ravel() > 0
        self.net = self._build(content, warm)
        order = data.recency if data.recency is not None else m.astype(np.float32)
        seqs = ordered_histories(order.tocsr(), 10**9)
        val_users = np.array([u for u, s in enumerate(seqs) if len(s) >= 3], dtype=np.int64)
        val_items = np.array([seqs[u][-1] for u in val_users], dtype=np.int64)
        train = [s[:-1] if len(s) >= 3 else s for s in seqs]
        users = np.array([u for u, s in enumerate(train) if len(s) >= 2], dtype=np.int64)
        opt = torch.optim.AdamW(self.net.parameters(), lr=c.lr, weight_decay=1e-5)
        best, best_state, bad = -1.0, None, 0
        cap = TimeCap(c.time_budget_s, "sequential")
        for epoch in range(c.max_epochs):
            cut = self._train_epoch(train, users, opt, rng, cap)
            hr = self.validation_hit_rate(train, val_users, val_items)
            if hr > best:
                best, bad = hr, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            else:
                bad += 1
            if bad >= c.patience:
                break
            if cap.stop(epoch, c.max_epochs, cut, self.time_capped_):
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        text = data.item_features.get("text")
        self.text_dim = int(text.shape[1]) if text is not None and text.shape[1] else TEXT_DIM

    def _train_epoch(self, seqs, users: np.ndarray, opt, rng, cap: TimeCap) -> bool:
        """One pass over ``users`` (``windows_per_user`` random windows of their ``seqs``
        each), stopping early once the wall-clock ``cap`` (if any) is reached; returns whether
        it did."""
        import torch

        c = self.config
        n_items = len(self.net.items.content)
        self.net.train()
        order = np.repeat(users, c.windows_per_user)
        rng.shuffle(order)
        for start in range(0, len(order), c.batch_size):
            windows = []
            for u in order[start : start + c.batch_size]:
                s = seqs[u]
                end = rng.integers(min(len(s), c.max_len + 1), len(s) + 1)
                windows.append(s[max(0, end - c.max_len - 1) : end])
            seq = torch.from_numpy(right_pad(windows))
            inp, tgt = seq[:, :-1], seq[:, 1:]
            valid = tgt >= 0
            t = tgt[valid]
            if n_items <= c.full_softmax_max:
                # one projection of the catalog serves both sides; each position of a
                # window still draws its own ID dropout
                projected = self.net.items.proj(self.net.items.content)
                table = self.net.items(None, projected)
                h = self.net(inp, projected)[valid]
                logits = h @ table.T / c.temperature
                loss = torch.nn.functional.cross_entropy(logits, t)
            else:
                loss = sampled_softmax_loss(
                    self.net.items,
                    self.net(inp)[valid],
                    t,
                    n_items,
                    c.sampled_negatives,
                    c.temperature,
                    rng,
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            if cap.reached():
                return True  # the cap covers training; the epoch is validated after it
        return False

    def validation_hit_rate(self, seqs, val_users: np.ndarray, val_items: np.ndarray) -> float:
        if not len(val_users):
            return 0.0
        hists = [seqs[u] for u in val_users]
        scores = self._score_sequences(hists)
        for n, h in enumerate(hists):
            scores[n, h] = -np.inf
        return hit_rate(scores, val_items)

    def _score_sequences(self, hists: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        self.net.eval()
        hists = [h[-self.config.max_len :] for h in hists]
        lengths = np.array([len(h) for h in hists])
        with torch.no_grad():
            items = self.net.items()
            out = np.zeros((len(hists), items.shape[0]), dtype=np.float32)
            has = np.flatnonzero(lengths > 0)
            for start in range(0, len(has), 512):
                rows = has[start : start + 512]
                seq = torch.from_numpy(right_pad([hists[r] for r in rows]))
                h = self.net(seq)[torch.arange(len(rows)), torch.from_numpy(lengths[rows] - 1)]
                out[rows] = (h @ items.T).numpy()
        return out

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        hists = ordered_histories(histories.tocsr(), self.config.max_len)
        scores = self._score_sequences(hists)
        if queries is not None and any(queries):
            scores = self.blend_queries(scores, np.array([len(h) > 0 for h in hists]), queries)
        return scores

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        """Occlusion over the ``explain_last`` most recent items (others get 0), in the
        order of ``history.indices``."""
        seq = ordered_histories(sp.csr_matrix(history), self.config.max_len)[0]
        recent = seq[-self.config.explain_last :]
        variants = [seq] + [seq[seq != i] for i in recent]
        s = self._score_sequences(variants)[:, items]
        drop = s[0][None, :] - s[1:]
        pos = {int(i): n for n, i in enumerate(history.indices)}
        out = np.zeros((len(items), len(history.indices)), dtype=np.float32)
        for n, i in enumerate(recent):
            out[:, pos[int(i)]] = drop[n]
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            **{f"net__{k}": v for k, v in state_to_numpy(self.net).items()},
            "text_dim": np.array(self.text_dim),
            **self.recipe,
        }

    def load_state_arrays(self, state, path) -> None:
        self.net = self._build(state["net__items.content"], state["net__items.warm"] > 0)
        load_numpy_state(self.net, state, "net__")
        self.net.eval()
        self.text_dim = int(state.get("text_dim", TEXT_DIM))
        self._recipe_from_state(state, state["net__items.content"])
