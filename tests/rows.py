"""Rows the tests set up directly through the repositories."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.models import Job, Pipeline, PipelineVersion
from common.repositories import JobRepository


def add_job(
    session: Session,
    pipeline_id: int,
    step_types: Sequence[str],
    pipeline_version_id: int | None = None,
) -> Job:
    """A queued job (as `JobRepository.insert` stores it), as an ORM object; it runs
    `pipeline_version_id`, by default the pipeline's current version."""
    if pipeline_version_id is None:
        pipeline_version_id = session.scalar(
            select(PipelineVersion.id)
            .join(Pipeline, Pipeline.id == PipelineVersion.pipeline_id)
            .where(Pipeline.id == pipeline_id, PipelineVersion.version == Pipeline.current_version)
        )
    assert pipeline_version_id is not None, f"there is no pipeline {pipeline_id}"
    jobs = JobRepository(session)
    queued = jobs.insert(pipeline_id, step_types, pipeline_version_id)
    job = jobs.get(queued.id)
    assert job is not None
    return job
