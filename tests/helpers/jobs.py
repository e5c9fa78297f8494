"""Jobs written straight to the database, for tests that need a job in a given state without a
worker having run it."""

from __future__ import annotations

import uuid

from common.db import session_scope
from common.repositories import JobRepository, PipelineRepository
from tests import images
from tests.helpers.product import add_pipeline


def failed_job(pipeline_id: int) -> uuid.UUID:
    """A job of `pipeline_id`, with an image, that has failed (no worker ever saw it)."""
    with session_scope() as session:
        pipelines = PipelineRepository(session)
        found = pipelines.current_version_id(pipeline_id)
        assert found is not None
        version_id, _ = found
        jobs = JobRepository(session)
        steps = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]
        queued = jobs.insert(pipeline_id, steps, version_id, ("image/jpeg", images.jpeg(64, 48)))
        job = jobs.get(queued.id)
        assert job is not None
        jobs.fail(job, "failed before the burst", position=2)
        return queued.id


def failing_pipeline() -> int:
    """A pipeline whose model step asks a path the model server does not serve: its jobs fail."""
    return add_pipeline(
        "burst",
        [
            {"type": "image.fit@v1"},
            {"type": "model.detect_car@v1", "params": {"path": "/missing"}},
            {"type": "storage.save_car_detection@v1"},
        ],
    )


def fail_again(job_id: uuid.UUID) -> None:
    """End a job that no worker will run, so that nothing waits for it."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(job_id)
        assert job is not None
        jobs.fail(job, "never run: the burst tests' queue has no worker")
