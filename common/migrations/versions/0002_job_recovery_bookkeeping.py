"""job recovery bookkeeping: when a job last moved, and its hand-overs to the broker

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.func.now(),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("enqueue_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_jobs_status_updated_at", ["status", "updated_at"], unique=False)
    # Jobs that exist already were handed to the broker once, when they were submitted.
    op.execute("UPDATE jobs SET enqueued_at = created_at, enqueue_count = 1")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_updated_at")
        batch_op.drop_column("enqueue_count")
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("updated_at")
