"""image bytes stored out of line and uncompressed (PostgreSQL)

JPEG, PNG and WebP bytes do not compress: PostgreSQL's attempt to compress each value before
storing it out of line only costs CPU. EXTERNAL keeps the out-of-line storage without it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE job_images ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE job_images ALTER COLUMN data SET STORAGE EXTENDED")
