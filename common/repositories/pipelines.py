"""Pipelines and their versions: the configs jobs run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, text

from common.models import Pipeline, PipelineVersion, utcnow
from common.repositories._base import Repository


class PipelineRepository(Repository):
    def get(self, pipeline_id: int, *, for_update: bool = False) -> Pipeline | None:
        """The pipeline; `for_update` locks its row and reads it afresh, even if loaded before.
        The lock (FOR NO KEY UPDATE) lets jobs referencing the pipeline be inserted meanwhile."""
        lock = {"key_share": True} if for_update else None
        return self.session.get(
            Pipeline, pipeline_id, with_for_update=lock, populate_existing=for_update
        )

    _CURRENT_VERSION = (
        select(Pipeline.archived_at, PipelineVersion.id)
        .join(
            PipelineVersion,
            and_(
                PipelineVersion.pipeline_id == Pipeline.id,
                PipelineVersion.version == Pipeline.current_version,
            ),
        )
        .where(Pipeline.id == bindparam("p_pipeline_id"))
    )

    def current_version_id(self, pipeline_id: int) -> tuple[int, datetime | None] | None:
        """The id of the pipeline's current version, and when the pipeline was archived (None:
        it was not); None if there is no such pipeline. Every submit asks: one Core query."""
        row = self.session.execute(self._CURRENT_VERSION, {"p_pipeline_id": pipeline_id}).first()
        return None if row is None else (int(row.id), row.archived_at)

    def list(self, *, archived: bool | None = None) -> Sequence[Pipeline]:
        """Every pipeline by id; only the archived ones, or only the others, if asked."""
        stmt = select(Pipeline).order_by(Pipeline.id)
        if archived is not None:
            is_archived = Pipeline.archived_at.is_not(None)
            stmt = stmt.where(is_archived if archived else ~is_archived)
        return self.session.scalars(stmt).all()

    def add(
        self, name: str, description: str, config: dict[str, Any], pipeline_id: int | None = None
    ) -> Pipeline:
        """A pipeline with its version 1."""
        pipeline = Pipeline(
            id=pipeline_id, name=name, description=description, config=config, current_version=1
        )
        self.session.add(pipeline)
        self.session.flush()
        self.session.add(PipelineVersion(pipeline_id=pipeline.id, version=1, config=config))
        self.session.flush()
        return pipeline

    def add_version(self, pipeline: Pipeline, config: dict[str, Any]) -> PipelineVersion:
        """The pipeline's next version, made current. Lock the row first (`for_update`): two
        versions written at once would otherwise take the same number (one then fails)."""
        version = PipelineVersion(
            pipeline_id=pipeline.id, version=pipeline.current_version + 1, config=config
        )
        self.session.add(version)
        pipeline.config = config
        pipeline.current_version = version.version
        self.session.flush()
        return version

    def archive(self, pipeline: Pipeline) -> None:
        if pipeline.archived_at is None:
            pipeline.archived_at = utcnow()

    def versions(self, pipeline_id: int) -> Sequence[PipelineVersion]:
        stmt = (
            select(PipelineVersion)
            .where(PipelineVersion.pipeline_id == pipeline_id)
            .order_by(PipelineVersion.version)
        )
        return self.session.scalars(stmt).all()

    def version(self, pipeline_id: int, number: int) -> PipelineVersion | None:
        return self.session.scalar(
            select(PipelineVersion).where(
                PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.version == number
            )
        )

    def version_by_id(self, version_id: int) -> PipelineVersion | None:
        return self.session.get(PipelineVersion, version_id)

    def sync_id_sequence(self) -> None:
        """After inserting explicit ids, move the id sequence past them."""
        self.session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('pipelines', 'id'), "
                "(SELECT COALESCE(MAX(id), 1) FROM pipelines))"
            )
        )
