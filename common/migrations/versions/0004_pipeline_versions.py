"""pipeline versions, archived pipelines, jobs pinned to a version; indexes for listing jobs

Every pipeline gets version 1 from its current config, and every job is pointed at its
pipeline's version 1: the config it was submitted under is the only one there has been.
`pipelines.config` stays as the current version's config.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pipeline_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_pipeline_versions_pipeline_id_pipelines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_versions")),
        sa.UniqueConstraint(
            "pipeline_id", "version", name=op.f("uq_pipeline_versions_pipeline_id_version")
        ),
    )
    op.add_column(
        "pipelines", sa.Column("current_version", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column("pipelines", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "INSERT INTO pipeline_versions (pipeline_id, version, config, created_at) "
        "SELECT id, 1, config, created_at FROM pipelines"
    )

    op.add_column("jobs", sa.Column("pipeline_version_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE jobs SET pipeline_version_id = (SELECT v.id FROM pipeline_versions v "
        "WHERE v.pipeline_id = jobs.pipeline_id AND v.version = 1)"
    )
    op.alter_column("jobs", "pipeline_version_id", existing_type=sa.Integer(), nullable=False)
    op.create_foreign_key(
        op.f("fk_jobs_pipeline_version_id_pipeline_versions"),
        "jobs",
        "pipeline_versions",
        ["pipeline_version_id"],
        ["id"],
    )
    # Listing pages newest first with ties broken by id. These cover the single-column indexes
    # they replace, which leaves inserts no more indexes to keep up than before.
    op.create_index("ix_jobs_created_at_id", "jobs", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_jobs_pipeline_id_created_at_id", "jobs", ["pipeline_id", "created_at", "id"]
    )
    op.drop_index("ix_jobs_created_at", table_name="jobs")
    op.drop_index("ix_jobs_pipeline_id", table_name="jobs")


def downgrade() -> None:
    # Only the current config of each pipeline survives (as `pipelines.config`, as before).
    op.create_index("ix_jobs_pipeline_id", "jobs", ["pipeline_id"], unique=False)
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"], unique=False)
    op.drop_index("ix_jobs_pipeline_id_created_at_id", table_name="jobs")
    op.drop_index("ix_jobs_created_at_id", table_name="jobs")
    op.drop_constraint(
        op.f("fk_jobs_pipeline_version_id_pipeline_versions"), "jobs", type_="foreignkey"
    )
    op.drop_column("jobs", "pipeline_version_id")
    op.drop_column("pipelines", "archived_at")
    op.drop_column("pipelines", "current_version")
    op.drop_table("pipeline_versions")
