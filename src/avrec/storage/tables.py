"""The database schema (SQLAlchemy 2 Core). Migrations in ``storage/migrations`` build it.

IDs are the catalog's external string IDs. ``interactions.timestamp`` is never NULL so that the
natural key ``(user_id, item_id, event, timestamp)`` makes re-ingest idempotent: an unknown time
is stored as ``-1`` and read back as missing.

One database holds one catalog: item and user IDs are global within it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

NO_TIMESTAMP = -1

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("root", Text, nullable=True, comment="folder that media paths are relative to"),
    Column("source_format", String(64), nullable=True),
    Column("ingested_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("title", Text),
    Column("description", Text),
    Column("genres", Text),
    Column("tags", Text),
    Column("kind", String(64)),
    Column("year", Float),
    Column("language", String(32)),
    Column("image", Text),
    Column("video", Text),
    Column("audio", Text),
    Column("comments", Text),
    Column("dataset", String(256), nullable=True),
    Column("extra", JSON, nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

item_media = Table(
    "item_media",
    metadata,
    Column(
        "item_id", String(256), ForeignKey("items.item_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("kind", String(16), primary_key=True, comment="image | video | audio"),
    Column("path", Text, nullable=False, comment="relative to the dataset folder"),
    Column("dataset", String(256), nullable=True),
    Column("bytes", BigInteger, nullable=True),
    Column("mime", String(128), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("user_id", String(256), primary_key=True),
    Column("attributes", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

interactions = Table(
    "interactions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # No foreign keys here on purpose: per-row FK triggers cost PostgreSQL ~6 s per million rows
    # of bulk ingest. References are checked by ingest inside the same transaction, and
    # deletes go through avrec.storage.users.delete_user, which removes dependents explicitly.
    Column("user_id", String(256), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("event", String(32), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("rating", Float),
    Column("weight", Float),
    Column("comment", Text),
    Column("sentiment", Float),
    UniqueConstraint("user_id", "item_id", "event", "timestamp", name="uq_interactions_key"),
)
Index("ix_interactions_item", interactions.c.item_id)

feedback_events = Table(
    "feedback_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("user_id", String(256), nullable=False, index=True),
    Column("item_id", String(256), nullable=False),
    Column("event", String(32), nullable=False),
    Column("value", Float),
    Column("watch_fraction", Float),
    Column("request_id", String(64), nullable=True),
    Column(
        "body_hash",
        String(64),
        nullable=True,
        comment="sha256 of the event body, for request_id replays",
    ),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    UniqueConstraint("user_id", "request_id", name="uq_feedback_events_user_id_request_id"),
)

#: one row per item of every list the service served: what was shown, where, with what score,
#: and the probability that the serving policy showed that item at that place (given the items
#: above it), so that logs support off-policy evaluation (``evaluation.ope``)
impressions = Table(
    "impressions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("list_id", String(36), nullable=False, index=True),
    Column("user_id", String(256), nullable=True, index=True),
    Column("item_id", String(256), nullable=False),
    Column("position", Integer, nullable=False),
    Column("score", Float),
    Column("propensity", Float, nullable=False),
    Column("policy", String(32), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

#: ads shown, clicked or skipped (``POST /api/events`` with an ``ad_id``): frequency caps count a
#: person's impressions of an ad on a UTC ``day``, budgets sum ``cost`` (a click costs the bid)
ad_events = Table(
    "ad_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("user_id", String(256), nullable=False),
    Column("ad_id", String(256), nullable=False),
    Column("context_item_id", String(256), nullable=False, comment="the video it ran next to"),
    Column("event", String(32), nullable=False, comment="impression | click | skip"),
    Column("cost", Float, nullable=False, server_default="0"),
    Column("day", String(10), nullable=False, comment="UTC date, YYYY-MM-DD"),
    Column("request_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    UniqueConstraint("user_id", "request_id", name="uq_ad_events_user_id_request_id"),
)
Index("ix_ad_events_user_day", ad_events.c.user_id, ad_events.c.day)
Index("ix_ad_events_day_ad", ad_events.c.day, ad_events.c.ad_id)

user_consent = Table(
    "user_consent",
    metadata,
    # no row: consent given (the default); a person's choice is stored when they make one
    Column("user_id", String(256), primary_key=True),
    Column("training", Boolean, nullable=False, comment="may their data train models"),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, comment="embedding | model | index | report"),
    Column("name", String(256), nullable=False),
    Column("version", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("content_hash", String(64), nullable=True),
    Column("meta", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    UniqueConstraint("kind", "name", "version", name="uq_artifacts_key"),
)

#: the model versions promoted for serving, oldest first: the last row is the one served;
#: versions are the ``artifacts`` rows of kind ``model`` (``storage.registry``)
model_promotions = Table(
    "model_promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),
    Column("note", Text, nullable=True),
    Column("promoted_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

item_understanding = Table(
    "item_understanding",
    metadata,
    Column(
        "item_id", String(256), ForeignKey("items.item_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("modality", String(32), primary_key=True),
    Column("encoder", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("status", String(16), nullable=False, comment="ok | failed | missing"),
    Column("reason", Text),
    Column("attributes", JSON),
    Column("content_hash", String(64)),
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="SET NULL"), nullable=True),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True, comment="sha256 of the key"),
    Column("scopes", String(128), nullable=False, comment="comma-separated: read, write, admin"),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)
