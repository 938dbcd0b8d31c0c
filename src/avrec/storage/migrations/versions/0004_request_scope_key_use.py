"""idempotency keys scoped to their user with a hash of the body; when an API key was last used

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback_events") as batch:
        batch.add_column(
            sa.Column(
                "body_hash",
                sa.String(length=64),
                nullable=True,
                comment="sha256 of the event body, for request_id replays",
            )
        )
        batch.drop_constraint("uq_feedback_events_request_id", type_="unique")
        batch.create_unique_constraint(
            "uq_feedback_events_user_id_request_id", ["user_id", "request_id"]
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("feedback_events") as batch:
        batch.drop_constraint("uq_feedback_events_user_id_request_id", type_="unique")
        batch.create_unique_constraint("uq_feedback_events_request_id", ["request_id"])
        batch.drop_column("body_hash")
