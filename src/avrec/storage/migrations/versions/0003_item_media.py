"""item media

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_media",
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="image | video | audio"),
        sa.Column("path", sa.Text(), nullable=False, comment="relative to the dataset folder"),
        sa.Column("dataset", sa.String(length=256), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("mime", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.item_id"],
            name=op.f("fk_item_media_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", "kind", name=op.f("pk_item_media")),
    )
    # media already stored as item columns by revision 0001
    for kind in ("image", "video", "audio"):
        op.execute(
            f"INSERT INTO item_media (item_id, kind, path, dataset) "
            f"SELECT item_id, '{kind}', {kind}, dataset FROM items WHERE {kind} IS NOT NULL"
        )


def downgrade() -> None:
    op.drop_table("item_media")
