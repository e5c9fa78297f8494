"""expired_job_counts: finished jobs the retention sweep deleted, by pipeline and outcome

With JOB_RETENTION_DAYS set, the workers delete finished jobs once they are that old. The API's
`pipeline_jobs_finished` counts finished jobs in the database at each scrape; a deletion would
make it go down, which Prometheus reads as a counter reset (and `rate()` as a burst as large as
the whole count). The sweep adds what it deletes here, in the same statement, and the scrape adds
these rows to the jobs still stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "expired_job_counts",
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_expired_job_counts_pipeline_id_pipelines"),
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "outcome", name=op.f("pk_expired_job_counts")),
    )


def downgrade() -> None:
    op.drop_table("expired_job_counts")
