"""ad events: ads shown, clicked or skipped, per person and UTC day (frequency caps, budgets)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ad_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("ad_id", sa.String(length=256), nullable=False),
        sa.Column("context_item_id", sa.String(length=256), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("cost", sa.Float, nullable=False, server_default="0"),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("user_id", "request_id", name="uq_ad_events_user_id_request_id"),
    )
    op.create_index("ix_ad_events_user_day", "ad_events", ["user_id", "day"])
    op.create_index("ix_ad_events_day_ad", "ad_events", ["day", "ad_id"])


def downgrade() -> None:
    op.drop_index("ix_ad_events_day_ad", table_name="ad_events")
    op.drop_index("ix_ad_events_user_day", table_name="ad_events")
    op.drop_table("ad_events")
