"""impressions: every list the service served, item by item, with the serving policy's
propensities (for off-policy evaluation)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impressions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("list_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_impressions_list_id", "impressions", ["list_id"])
    op.create_index("ix_impressions_user_id", "impressions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_impressions_user_id", table_name="impressions")
    op.drop_index("ix_impressions_list_id", table_name="impressions")
    op.drop_table("impressions")
