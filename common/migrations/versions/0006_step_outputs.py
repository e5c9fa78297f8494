"""job_steps.output: what each step reported once it succeeded

Until now only the data passed between steps was kept (jobs.payload, overwritten by each step),
so what one step reported could not be told from what a later step made of it. Steps that ran
before this revision keep a null output.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # Nullable without a default: PostgreSQL adds it without rewriting the table.
    op.add_column("job_steps", sa.Column("output", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("job_steps", "output")
