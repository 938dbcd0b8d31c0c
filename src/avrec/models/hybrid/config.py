"""The hybrid's settings: one typed, frozen config per part, nested in :class:`HybridConfig`.

Model folders and configs written before the parts existed used one flat list of fields
(``l2``, ``vae_weight``, ``cold_rank_share``, ...); :data:`FLAT_FIELDS` maps each to its part,
so a flat config still reads (``HybridConfig(l2=300)`` equals
``HybridConfig(backbone={"l2": 300})``). The tuning history behind the defaults is in
docs/benchmarks.md ("hybrid").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from avrec.models.base import ModelConfig

#: bumped when the saved layout of a hybrid changes (manifest ``config_schema``)
CONFIG_SCHEMA = 2


class PartConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackboneConfig(PartConfig):
    """The collaborative item-item weights. ``kind``: ``ease`` (EASE with content side
    information, denoising and rating weights, models.ease: dense items x items),
    ``sparse`` (the same regression restricted to each item's ``neighbors`` nearest items,
    models.sparse_ease: a sparse matrix, memory linear in the catalog) or ``itemknn`` (cosine
    item-item similarities of the interactions, models.itemknn)."""

    kind: Literal["ease", "sparse", "itemknn"] = "ease"
    l2: float = 500.0
    #: EASE's denoising emphasis and the weight of the content side information
    dropout: float = 0.5
    side_weight: float = 50.0
    #: explicit ratings weigh each interaction by ``1 + rating_weight * (rating - mean) / 2``
    #: in the backbone's input and in the history at scoring time; 0: off
    rating_weight: float = 0.3
    #: the rating the factors centre on (None: the training ratings' mean, a statistic of
    #: everyone, so forgetting a user leaves their share of it until the next training; a
    #: number: fixed, and forgetting is exact, models.forget)
    rating_center: float | None = None
    #: itemknn and sparse: neighbours kept per item
    neighbors: int = 100
    #: a warm start (models.hybrid.warm) updates the denoising penalty of the items whose
    #: counts changed (one rank of the update each, ``n^2`` operations) only while they are
    #: at most this share of the items; above it, those items keep the previous fit's penalty
    #: (``l2 + count``, off by their new events) until the next full fit. 1: always exact
    warm_penalty_share: float = Field(default=0.01, ge=0.0, le=1.0)


class ContentPartConfig(PartConfig):
    """Pretrained text vectors (side information, cold items) and the request encoder."""

    #: encoder of the catalog's text (None: ``text-en``, MiniLM, up to ``fast_above`` items and
    #: ``fast_encoder`` above, where MiniLM's encoding of the catalog would take longer than
    #: the rest of the training: docs/benchmarks.md, "Default training at scale")
    encoder: str | None = None
    fast_encoder: str = "text-fast"
    fast_above: int = 50_000
    #: encoder of free-text requests (None: no requests); ``text-en`` follows the catalog's
    #: encoder where ``fast_encoder`` replaces it
    query_encoder: str | None = "text-multi"
    #: weight of the zero-shot content score added to the collaborative one (0: off; the side
    #: information inside the backbone carries the content)
    weight: float = 0.0


#: the catalog's text encoder up to ``ContentPartConfig.fast_above`` items
DEFAULT_TEXT_ENCODER = "text-en"


def text_encoders(c: ContentPartConfig, n_items: int) -> tuple[str, str | None]:
    """The (catalog, request) text encoders of a catalog of ``n_items`` items: as named, or
    for ``encoder=None`` MiniLM up to ``fast_above`` items and ``fast_encoder`` above, which
    then also encodes the requests that MiniLM would have."""
    if c.encoder is not None:
        return c.encoder, c.query_encoder
    if n_items <= c.fast_above:
        return DEFAULT_TEXT_ENCODER, c.query_encoder
    query = c.fast_encoder if c.query_encoder == DEFAULT_TEXT_ENCODER else c.query_encoder
    return c.fast_encoder, query


class ColdItemsConfig(PartConfig):
    """Items without interactions get backbone columns and rows from their content."""

    #: nearest warm items in the text space, and the softmax temperature over their cosines
    neighbors: int = 50
    temperature: float = 0.2
    #: share of the learned content -> backbone ridge map against the neighbours (0: off)
    ridge: float = 0.7
    ridge_l2: float = 10.0
    #: sparse backbone only: above this many warm items (neighbours) or items (ridge columns)
    #: both searches use a faiss IVF index (approximate, cost ~ cold items x probed rows)
    ann_above: int = 50_000


class ShortHistoryConfig(PartConfig):
    """Short histories lean on co-occurrence counts and a first-items ridge map, weighted
    ``prior_weight * exp(-(history length - 1) / prior_shrink)`` in units of the user's
    collaborative score spread."""

    prior_weight: float = 50.0
    prior_shrink: float = 3.0
    #: training users' first ``prefix`` items -> all their items (models.prefix); 0: off;
    #: skipped over ``max_items`` items (an items x items solve), where its dense map does not
    #: fit in the available memory, or without times
    prefix: int = 3
    l2: float = 150.0
    max_items: int = 20_000


class RecencyConfig(PartConfig):
    """History items weigh ``(1 - mix) + mix * exp(-(recency rank - 1) / tau)``. With
    ``learn``, and training data with times, ``fit`` chooses ``(mix, tau)`` from ``grid`` by a
    validation split by time (models.hybrid.recency; the choice is the fitted
    ``Hybrid.recency.mix_`` / ``tau_``, in the manifest's ``learned``); ``tau`` and ``mix`` are
    the values without times, without learning, or where the validation is skipped."""

    tau: float | None = 5.0
    mix: float = 0.0
    learn: bool = True
    #: the (mix, tau) points tried; the first is the reference of ``keep_random``
    grid: tuple[tuple[float, float | None], ...] = (
        (0.0, 5.0),
        (0.3, 5.0),
        (0.6, 5.0),
        (0.8, 5.0),
        (1.0, 5.0),
        (1.0, 2.0),
    )
    #: a point is allowed only if the NDCG@10 of a random held-out earlier item loses at most
    #: this share of the first point's (None: the best point on the next item, whatever the
    #: rest of the history loses)
    keep_random: float | None = 0.01
    #: a point other than the first needs a gain on the next items of at least this many
    #: standard errors of the paired per-user difference
    min_gain_se: float = 2.0
    #: users with at least this many training items are validated, at most ``max_users`` of
    #: them (a seeded sample); skipped over ``max_items`` items (one more backbone fit)
    min_items: int = 5
    max_users: int = 5000
    max_items: int = 20_000


class VAEBlendConfig(PartConfig):
    """A Mult-VAE beside the backbone: ``z(hybrid) + weight * z(vae)`` over the items with
    training interactions (the others get ``(1 + weight) * z(hybrid)``); 0: off. The weight
    ramps from 0 at ``ramp[0]`` history items to full at ``ramp[1]``."""

    weight: float = 4.0
    ramp: tuple[int, int] = (3, 15)
    #: epochs a warm start (models.hybrid.warm) trains the VAE on the new data from its
    #: weights; 0: the VAE is kept as it was
    warm_epochs: int = Field(default=10, ge=0)
    #: skipped over ``max_items`` items: each training step's decoder is a batch x items
    #: dense product (and its softmax), so an epoch costs users x items x hidden units
    max_items: int = 20_000
    #: the VAE's own settings (models.vae.VAEConfig)
    settings: dict[str, Any] = Field(default_factory=dict)


class ColdRankerConfig(PartConfig):
    """A LightGBM ranker of the cold items, trained on simulated cold start (models.coldrank),
    fitted when at least ``share`` of the catalog is cold and it has at most ``max_items``."""

    share: float = 0.05
    folds: int = 5
    trees: int = 100
    max_items: int = 5000


class RequestBlendConfig(PartConfig):
    """How a request's scores meet the history's. ``learned``: a LightGBM ranker of each
    request's candidates (models.hybrid.requestrank), trained on ``requests`` simulated
    requests (a share ``no_history_share`` also asked without history), fitted where the
    content part has a request encoder; otherwise, or with fewer than ``min_users`` people,
    the fixed blend ``weight * z(request) + (1 - weight) * z(history)`` (with no history, the
    request's alone)."""

    weight: float = 0.7
    learned: bool = True
    requests: int = 1500
    #: candidates per request: the top ``candidates`` by request similarity and by taste
    candidates: int = 100
    no_history_share: float = 0.3
    trees: int = 150
    #: fewer people than this in the training data: the fixed blend (too few to learn from)
    min_users: int = 100
    #: more items than this: the fixed blend (the ranker's taste comes from one more fit of
    #: the whole hybrid, as long as the model's own fit: docs/benchmarks.md, "Default training
    #: at scale")
    max_items: int = 20_000


#: flat field of the earlier config -> (part, field)
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    "l2": ("backbone", "l2"),
    "ease_dropout": ("backbone", "dropout"),
    "side_weight": ("backbone", "side_weight"),
    "rating_weight": ("backbone", "rating_weight"),
    "neighbors": ("cold_items", "neighbors"),
    "temperature": ("cold_items", "temperature"),
    "cold_ridge": ("cold_items", "ridge"),
    "cold_ridge_l2": ("cold_items", "ridge_l2"),
    "content_weight": ("content", "weight"),
    "query_encoder": ("content", "query_encoder"),
    "query_weight": ("request", "weight"),
    "recency_tau": ("recency", "tau"),
    "recency_mix": ("recency", "mix"),
    "recency_learn": ("recency", "learn"),
    "prior_weight": ("short_history", "prior_weight"),
    "prior_shrink": ("short_history", "prior_shrink"),
    "short_prefix": ("short_history", "prefix"),
    "short_l2": ("short_history", "l2"),
    "short_max_items": ("short_history", "max_items"),
    "vae_weight": ("vae", "weight"),
    "vae_ramp": ("vae", "ramp"),
    "vae_max_items": ("vae", "max_items"),
    "vae": ("vae", "settings"),
    "cold_rank_share": ("cold_ranker", "share"),
    "cold_rank_folds": ("cold_ranker", "folds"),
    "cold_rank_trees": ("cold_ranker", "trees"),
    "cold_rank_max_items": ("cold_ranker", "max_items"),
}


class HybridConfig(ModelConfig):
    backbone: BackboneConfig = BackboneConfig()
    content: ContentPartConfig = ContentPartConfig()
    cold_items: ColdItemsConfig = ColdItemsConfig()
    short_history: ShortHistoryConfig = ShortHistoryConfig()
    recency: RecencyConfig = RecencyConfig()
    vae: VAEBlendConfig = VAEBlendConfig()
    cold_ranker: ColdRankerConfig = ColdRankerConfig()
    request: RequestBlendConfig = RequestBlendConfig()

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_fields(cls, data: Any) -> Any:
        """Route the earlier flat fields to their parts (a flat ``vae`` dict is the VAE's
        own settings; a nested one has a part's fields)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        vae = data.get("vae")
        if isinstance(vae, dict) and vae and not set(vae) <= set(VAEBlendConfig.model_fields):
            data["vae"] = {"settings": data.pop("vae")}
        elif vae == {}:
            data.pop("vae")
        for flat, (part, name) in FLAT_FIELDS.items():
            if flat in data and flat != part:
                value = data.pop(flat)
                current = data.get(part, {})
                current = current.model_dump() if isinstance(current, BaseModel) else dict(current)
                data[part] = {**current, name: value}
        return data

    def with_parts(self, **changes: dict[str, Any]) -> HybridConfig:
        """A copy with some parts' fields changed: ``with_parts(vae={"weight": 0})``."""
        current = self.model_dump()
        for part, fields in changes.items():
            current[part] = {**current[part], **fields}
        return type(self)(**current)
