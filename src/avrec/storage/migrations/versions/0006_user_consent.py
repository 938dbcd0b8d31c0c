"""a person's consent to their data training models (no row: consent given)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_consent",
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("training", sa.Boolean(), nullable=False, comment="may their data train models"),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_consent")),
    )


def downgrade() -> None:
    op.drop_table("user_consent")
