"""step lease: a running step's claim holds it until `lease_expires_at`, renewed while it runs

A delivery of the step's message that finds the lease live defers instead of running the step
again; once the lease lapses (its worker died), the step may be claimed again. Steps running
when this revision is applied have no lease, so they are claimable, as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "job_steps", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("job_steps", "lease_expires_at")
