"""Shared parts of the neural models (two-tower, sequential): item content inputs, the item
tower (frozen pretrained vectors through a trained projection, plus an ID embedding that is
dropped during training so items without interactions still score well), histories as
index sequences, and the torch <-> npz conversion used for saving (no pickle)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.encoders.text import TEXT_DIM
from avrec.models.base import ModelConfig, TrainData
from avrec.models.scaling import blend_request

#: media vectors the item tower reads beside the text, in this order (``item_features`` keys;
#: a zero row is a missing modality)
MEDIA = ("image", "video", "audio")
#: each media block is cut to this many principal components (over the items that have it)
MEDIA_DIM = 64


def _media(features: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(vectors, has-it mask, block width) of each media modality that some item has."""
    out = []
    for name in MEDIA:
        mat = features.get(name)
        if mat is None or mat.shape[1] == 0:
            continue
        mat = np.asarray(mat, np.float32)
        has = np.linalg.norm(mat, axis=1) > 0
        if has.any():
            out.append((mat, has, max(1, min(MEDIA_DIM, int(has.sum()) - 1, mat.shape[1]))))
    return out


def media_width(features: dict[str, np.ndarray]) -> int:
    """Columns :func:`media_inputs` gives for ``features`` (without computing them)."""
    media = _media(features)
    return sum(k for _, _, k in media) + len(media)


def media_inputs(features: dict[str, np.ndarray], n_items: int, flags: bool = True) -> np.ndarray:
    """``[n_items, d]`` the media blocks of the content inputs: per modality in :data:`MEDIA`
    that some item has, its vectors centred and cut to their first :data:`MEDIA_DIM`
    principal components over the items that have it, rows L2-normalised (zero where the item
    lacks it), then (``flags``) one has-it flag column per modality. ``[n_items, 0]`` without
    media."""
    blocks, has_it = [], []
    for mat, has, k in _media(features):
        centred = mat[has] - mat[has].mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        low = centred @ vt[:k].T
        norms = np.linalg.norm(low, axis=1, keepdims=True)
        block = np.zeros((len(mat), k), np.float32)
        block[has] = low / np.where(norms > 0, norms, 1.0)
        blocks.append(block)
        has_it.append(has.astype(np.float32))
    if not blocks:
        return np.zeros((n_items, 0), np.float32)
    return np.hstack(blocks + ([np.stack(has_it, axis=1)] if flags else [])).astype(np.float32)


def content_inputs(data: TrainData, encoder: str = "text-en") -> np.ndarray:
    """``[n_items, d]`` frozen content vectors: the text vectors (from ``item_features`` or
    encoded with ``encoder``), then the genre one-hot when the features have it, then the
    media blocks (:func:`media_inputs`) when the features hold image, video or audio vectors;
    the item tower's first layer learns how to weigh them (a learned fusion)."""
    text = data.item_features.get("text")
    if text is None or text.shape[1] == 0:
        from avrec.encoders.pipeline import encode_item_texts

        text = encode_item_texts(data.items, encoder)
    blocks = [np.asarray(text, np.float32)]
    if "genres" in data.item_features and data.item_features["genres"].shape[1]:
        blocks.append(np.asarray(data.item_features["genres"], np.float32))
    blocks.append(media_inputs(data.item_features, len(blocks[0])))
    return np.hstack(blocks).astype(np.float32)


def content_recipe(data: TrainData, content: np.ndarray) -> dict[str, np.ndarray]:
    """How :func:`content_inputs` built ``content`` for ``data``, so that items added later get
    the same columns (saved with the model): the text block's width, the genre vocabulary
    (empty where the genre block did not come from the catalog's ``genres`` column: new items
    then get zeros there), whether empty texts got zero vectors (the features pipeline) or
    were encoded (the model's own encoding), and the media blocks' width (new items get zeros
    there: their media are not read when they are added)."""
    from avrec.fusion.features import genre_vocabulary

    genres = data.item_features.get("genres")
    genre_width = int(genres.shape[1]) if genres is not None and genres.shape[1] else 0
    vocab = genre_vocabulary(data.items) if genre_width else []
    if len(vocab) != genre_width and not (genre_width == 1 and not vocab):
        vocab = []
    text = data.item_features.get("text")
    media = media_width(data.item_features)
    return {
        "recipe_text_width": np.array(content.shape[1] - genre_width - media),
        "recipe_media_width": np.array(media),
        "recipe_genres": np.array(vocab, dtype=str),
        "recipe_genre_width": np.array(genre_width),
        "recipe_zero_empty_text": np.array(text is not None and text.shape[1] > 0),
    }


def without_media(content: np.ndarray, recipe: dict[str, np.ndarray]) -> np.ndarray:
    """``content`` without its media columns; ``recipe`` is updated to match (so the model is
    the one it would be had the data held no media)."""
    media = int(recipe.get("recipe_media_width", 0))
    recipe["recipe_media_width"] = np.array(0)
    return content[:, : content.shape[1] - media] if media else content


def new_content_inputs(
    items: pd.DataFrame, recipe: dict[str, np.ndarray], encoder: str = "text-en"
) -> np.ndarray:
    """Content inputs of new catalog rows built like the training ones (see
    :func:`content_recipe`): text vectors with the same encoder, genres one-hot over the
    training vocabulary (unknown genres ignored), zeros for the media blocks."""
    from avrec.encoders.itemtext import item_text
    from avrec.encoders.pipeline import encode_texts_cached
    from avrec.fusion.features import genre_matrix

    texts = [item_text(row) for row in items.to_dict("records")]
    width = int(recipe["recipe_text_width"])
    text = np.zeros((len(texts), width), dtype=np.float32)
    has = (
        np.array([bool(t.strip()) for t in texts], dtype=bool)
        if bool(recipe["recipe_zero_empty_text"])
        else np.ones(len(texts), dtype=bool)
    )
    if has.any():
        vecs = encode_texts_cached([t for t, h in zip(texts, has, strict=True) if h], encoder)
        if vecs.shape[1] != width:
            raise ValueError(
                f"encoder {encoder!r} gives {vecs.shape[1]}-d vectors, the model "
                f"was trained on {width}-d text vectors"
            )
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        text[has] = vecs / np.where(norms > 0, norms, 1.0)
    blocks = [text]
    genre_width = int(recipe["recipe_genre_width"])
    if genre_width:
        vocab = [str(g) for g in recipe["recipe_genres"]]
        blocks.append(
            genre_matrix(items, vocab=vocab)
            if vocab
            else np.zeros((len(items), genre_width), dtype=np.float32)
        )
    blocks.append(np.zeros((len(items), int(recipe.get("recipe_media_width", 0))), np.float32))
    return np.hstack(blocks).astype(np.float32)


def grown_item_state(
    state: dict[str, np.ndarray], content: np.ndarray, prefix: str = "items."
) -> dict[str, np.ndarray]:
    """A network state (:func:`state_to_numpy`) whose item tower holds ``content`` as extra,
    cold items: their content rows appended, ``warm`` 0 and an unused zero ID embedding (and
    ID logit bias, where the tower has biases)."""
    out = dict(state)
    n = len(content)
    out[prefix + "content"] = np.vstack([state[prefix + "content"], content]).astype(np.float32)
    out[prefix + "warm"] = np.concatenate([state[prefix + "warm"], np.zeros(n, np.float32)])
    for key in ("ids.weight", "id_bias.weight"):  # the logit bias only where the tower has one
        if prefix + key in state:
            old = state[prefix + key]
            out[prefix + key] = np.vstack([old, np.zeros((n, old.shape[1]), old.dtype)])
    return out


def ordered_histories(histories: sp.csr_matrix, max_len: int) -> list[np.ndarray]:
    """Each row's item indices oldest first (values are recency ranks, 1 = most recent),
    the last ``max_len`` kept."""
    out = []
    for n in range(histories.shape[0]):
        lo, hi = histories.indptr[n], histories.indptr[n + 1]
        idx, rank = histories.indices[lo:hi], histories.data[lo:hi]
        out.append(idx[np.argsort(-rank, kind="stable")][-max_len:])
    return out


def pad(seqs: Sequence[np.ndarray], pad_value: int) -> np.ndarray:
    """Right-aligned ``[n, max_len]`` int64 array (padding on the left)."""
    width = max([len(s) for s in seqs] + [1])
    out = np.full((len(seqs), width), pad_value, dtype=np.int64)
    for n, s in enumerate(seqs):
        if len(s):
            out[n, width - len(s) :] = s
    return out


def item_tower_class() -> Any:
    import torch
    from torch import nn

    class ItemTower(nn.Module):
        """v_j = normalise(W c_j + id_j); id_j is zero for cold items and, while training,
        dropped with probability ``id_dropout`` (whole embedding). With ``bias``, each item
        also has a logit bias b_j = g . c_j + g0 + beta_j (:meth:`forward` with ``with_bias``): a
        linear map of its content, which every item has, plus a scalar beta_j that only warm
        items have, dropped together with their ID embedding."""

        content: torch.Tensor  # buffers, registered in __init__
        warm: torch.Tensor

        def __init__(
            self,
            content: np.ndarray,
            warm: np.ndarray,
            dim: int,
            id_dropout: float,
            bias: bool = False,
        ):
            super().__init__()
            self.register_buffer("content", torch.from_numpy(content))
            self.register_buffer("warm", torch.from_numpy(warm.astype(np.float32)))
            self.proj = nn.Sequential(
                nn.Linear(content.shape[1], dim), nn.GELU(), nn.Linear(dim, dim)
            )
            self.ids = nn.Embedding(len(content), dim)
            nn.init.normal_(self.ids.weight, std=0.01)
            self.id_dropout = id_dropout
            self.has_bias = bias
            if bias:
                self.content_bias = nn.Linear(content.shape[1], 1)
                self.id_bias = nn.Embedding(len(content), 1)
                for t in (self.content_bias.weight, self.content_bias.bias, self.id_bias.weight):
                    nn.init.zeros_(t)

        def forward(self, idx=None, projected=None, with_bias: bool = False):
            """The vectors of items ``idx`` (None: the catalog). ``projected``: ``proj`` of the
            whole catalog's content, already computed this step, looked up instead of
            recomputed (the ID dropout is still drawn for each call and position). With
            ``with_bias``: (vectors, logit biases), the biases sharing the ID dropout draw
            (zeros for a tower without biases)."""
            if projected is None:
                p = self.proj(self.content if idx is None else self.content[idx])
            else:
                p = projected if idx is None else projected[idx]
            w = self.warm if idx is None else self.warm[idx]
            e = self.ids.weight if idx is None else self.ids(idx)
            if self.training and self.id_dropout > 0:
                w = w * (torch.rand_like(w) >= self.id_dropout).float()
            v = nn.functional.normalize(p + e * w[..., None], dim=-1)
            if not with_bias:
                return v
            if not self.has_bias:
                return v, torch.zeros(v.shape[:-1], dtype=v.dtype)
            beta = self.id_bias.weight[:, 0] if idx is None else self.id_bias(idx)[..., 0]
            return v, self.item_content_bias(idx) + beta * w

        def item_content_bias(self, idx=None):
            """The content part of the logit bias (all a cold item has); zeros without biases."""
            c = self.content if idx is None else self.content[idx]
            if not self.has_bias:
                return torch.zeros(c.shape[:-1], dtype=c.dtype)
            return self.content_bias(c)[..., 0]

    return ItemTower


def state_to_numpy(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_numpy_state(module, state: dict[str, np.ndarray], prefix: str) -> None:
    import torch

    own = {
        k.removeprefix(prefix): torch.from_numpy(np.array(v))
        for k, v in state.items()
        if k.startswith(prefix)
    }
    module.load_state_dict(own)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each row's target's rank among all its items (0 = top; ties count in its favour)."""
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores > target_scores[:, None]).sum(axis=1)


def hit_rate(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Share of rows whose target is in the top ``k`` (early stopping signal)."""
    return float((target_ranks(scores, targets) < k).mean())


def held_out_ndcg(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean ``1 / log2(rank + 2)`` of each row's target among all its items: an early
    stopping signal that, unlike a hit rate at a cut-off, counts every rank."""
    return float((1.0 / np.log2(target_ranks(scores, targets) + 2.0)).mean())


class QueryMixin:
    """Natural-language requests for models built on the item tower: the request is encoded
    with the model's English text encoder and matched zero-shot against the items' frozen text
    vectors (the first ``text_dim`` columns of the content inputs), then mixed with the
    history scores (z-scored) by ``config.query_weight``."""

    text_dim: int = TEXT_DIM
    config: NeuralConfig
    net: Any  # the model's torch module, built in its fit or load

    @property
    def query_vectors(self) -> np.ndarray:
        return self.net.items.content.numpy()[:, : self.text_dim]

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        from avrec.encoders.registry import get_encoder

        enc = get_encoder(self.config.encoder)
        return getattr(enc, "encode_queries", enc.encode)(list(queries))

    def blend_queries(
        self, scores: np.ndarray, has_history: np.ndarray, queries: Sequence[str | None]
    ) -> np.ndarray:
        has = [n for n, q in enumerate(queries) if q and q.strip()]
        if not has:
            return scores
        q = self.encode_queries([q for q in queries if q and q.strip()])
        text = self.query_vectors
        for row, n in enumerate(has):
            scores[n] = blend_request(
                scores[n], text @ q[row], bool(has_history[n]), self.config.query_weight
            )
        return scores


class ItemTowerCatalogMixin:
    """``add_items`` for models built on the item tower (``self.net.items``, ``self._build``,
    ``self.recipe`` from :func:`content_recipe`): new items are encoded like the training
    ones and enter the tower as cold items (content only, no ID embedding), so they are scored
    without retraining."""

    recipe: dict[str, np.ndarray]
    config: NeuralConfig
    net: Any

    if TYPE_CHECKING:  # provided by the Recommender subclass the mixin is used with

        def _extend_catalog(self, items: pd.DataFrame) -> pd.DataFrame: ...

        def _build(self, content: np.ndarray, warm: np.ndarray) -> Any: ...

    def add_items(self, items: pd.DataFrame) -> list[str]:
        new = self._extend_catalog(items)
        if new.empty:
            return []
        rows = new_content_inputs(new, self.recipe, self.config.encoder)
        state = grown_item_state(state_to_numpy(self.net), rows)
        self.net = self._build(state["items.content"], state["items.warm"] > 0)
        load_numpy_state(self.net, state, "")
        self.net.eval()
        return [str(i) for i in new["item_id"]]

    def _recipe_from_state(self, state: dict[str, np.ndarray], content: np.ndarray) -> None:
        """The saved recipe; for models saved before it existed, a guess (no genre vocabulary)."""
        if "recipe_text_width" in state:
            self.recipe = {k: state[k] for k in state if k.startswith("recipe_")}
            return
        text = int(getattr(self, "text_dim", TEXT_DIM))
        self.recipe = {
            "recipe_text_width": np.array(text),
            "recipe_genres": np.array([], dtype=str),
            "recipe_genre_width": np.array(content.shape[1] - text),
            "recipe_zero_empty_text": np.array(True),
        }


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op thread count set to ``n`` inside the block, restored after it (None:
    left as it is)."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class WeightAverage:
    """An exponential moving average of a module's trained weights (its buffers, such as the
    item tower's content, are copied as they are), updated after every
    optimiser step (Polyak averaging): it smooths out the noise of the latest mini-batches,
    which pays on long trainings. Its decay warms up, ``min(decay, (1 + t) / (10 + t))`` at
    update ``t`` (as TensorFlow's ExponentialMovingAverage with ``num_updates``), so that the
    early, random weights fade fast and a short training of a few dozen steps is not held back
    near its initial weights. ``decay`` 0 turns it off (every method is then a no-op and
    :attr:`active` is False)."""

    def __init__(self, module, decay: float):
        self.decay = decay
        self.average = (
            {k: v.detach().clone() for k, v in module.state_dict().items()} if decay > 0 else None
        )
        self.updates = 0
        #: the state-dict keys that are trained (the rest, buffers, are copied)
        self.trained = {name for name, _ in module.named_parameters()}
        self._live: dict | None = None

    def current_decay(self) -> float:
        """The decay the next :meth:`update` applies."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @property
    def active(self) -> bool:
        return self.average is not None

    def update(self, module) -> None:
        if self.average is None:
            return
        import torch

        decay = self.current_decay()
        self.updates += 1
        with torch.no_grad():
            for k, v in module.state_dict().items():
                if k in self.trained and v.dtype.is_floating_point:  # buffers are copied exactly
                    self.average[k].mul_(decay).add_(v, alpha=1.0 - decay)
                else:
                    self.average[k].copy_(v)

    def swap_in(self, module) -> None:
        """Put the average into ``module``; :meth:`swap_out` restores the live weights."""
        if self.average is not None:
            self._live = {k: v.detach().clone() for k, v in module.state_dict().items()}
            module.load_state_dict(self.average)

    def swap_out(self, module) -> None:
        if self._live is not None:
            module.load_state_dict(self._live)
            self._live = None


def multi_target_loss(logits, targets: Sequence[np.ndarray]):
    """Mean over rows of the average negative log-softmax of each row's target items
    (``targets[n]``: row ``n``'s item indices, at least one): the multinomial likelihood of
    Mult-VAE, normalised per row. With one target per row it is the usual cross-entropy."""
    import torch

    rows = np.repeat(np.arange(len(targets)), [len(t) for t in targets])
    cols = np.concatenate([np.asarray(t, np.int64) for t in targets])
    logp = torch.log_softmax(logits, dim=1)[torch.from_numpy(rows), torch.from_numpy(cols)]
    per_row = torch.zeros(len(targets), dtype=logp.dtype).index_add_(
        0, torch.from_numpy(rows), logp
    )
    counts = torch.from_numpy(np.array([len(t) for t in targets], np.float32)).to(logp.dtype)
    return -(per_row / counts).mean()


def sampled_softmax_loss(
    items,
    queries,
    targets,
    n_items: int,
    negatives: int,
    temperature: float,
    rng: np.random.Generator,
):
    """Cross-entropy of each query vector's target item against ``negatives`` catalog items
    drawn uniformly for the whole batch (catalogs above ``full_softmax_max``); ``items``: the
    item tower (indices -> vectors), whose logit biases, where it has them, are added to the
    logits ``q . v / temperature``."""
    import torch

    neg = torch.from_numpy(rng.choice(n_items, negatives, replace=False))
    (pv, pb), (nv, nb) = items(targets, with_bias=True), items(neg, with_bias=True)
    logits = torch.cat([(queries * pv).sum(-1, keepdim=True), queries @ nv.T], dim=1) / temperature
    logits = logits + torch.cat([pb[:, None], nb[None, :].expand(len(pb), -1)], dim=1)
    return torch.nn.functional.cross_entropy(logits, torch.zeros_like(targets))


class NeuralConfig(ModelConfig):
    """Settings shared by the torch models (two-tower, sequential)."""

    #: torch threads while training (None: torch's default). 1 makes a fit repeat exactly for
    #: a seed: with several threads, sums run in a varying order and early stopping turns
    #: that into different models (sequential, ml-100k last, one seed, four fits: HR@10
    #: 0.170-0.190), at about 1.45x the fit time (2 cores).
    threads: int | None = None

    #: optional cap: stop training after the step during which this many seconds passed (the
    #: best epoch so far is kept), recorded in the fitted model (``time_capped_``); None: no
    #: cap, training stops on ``max_epochs`` and ``patience`` only, so it does not depend on
    #: the machine's speed. The 120 s budget of before was not reached on ml-100k (two-tower
    #: 35 s, sequential 27 s) or ml-latest-small (52 s, 30 s)
    time_budget_s: float | None = None
    #: full softmax over the catalog up to this many items, sampled negatives above
    full_softmax_max: int = 20_000
    encoder: str = "text-en"
    query_weight: float = 0.7
