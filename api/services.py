"""What the job routes do apart from HTTP, besides submitting (api.submit): retry a job,
describe a job."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.orm import Session

from api.backpressure import commit_if_admitted
from api.deps import db_session
from api.errors import ApiError
from api.schemas import JobView
from api.submit import hand_over, open_pipeline, step_types_of
from common.models import JobStatus
from common.repositories import (
    CarDetectionRepository,
    JobRepository,
    QueuedJob,
)
from common.settings import Settings

log = logging.getLogger(__name__)


def retry_job(settings: Settings, job_id: uuid.UUID, *, current_version: bool = False) -> QueuedJob:
    """Run a failed job again from the step that failed, on its stored image and its version;
    or, with `current_version`, on its pipeline's current version, every step from the first
    on the original image (as a retry on its own version if that is the current one).

    404 `job_not_found`; 409 `job_not_failed` (of concurrent retries one wins, the others get
    this); with `current_version`, 409 `pipeline_archived`; 503 `queue_full`."""
    with db_session() as session:
        jobs = JobRepository(session)
        rerun = _current_version_of(session, job_id) if current_version else None
        job = jobs.requeue_failed(job_id, rerun)
        if job is None:
            found = jobs.status(job_id)
            if found is None:
                raise ApiError(404, "job_not_found", f"there is no job {job_id}")
            raise ApiError(
                409,
                "job_not_failed",
                f"job {job_id} is {found[0]}; only a failed job can be retried",
            )
        commit_if_admitted(session, settings)
        hand_over(session, job.id, job.pipeline_id, job.steps, kind="retry")
    log.info("job %s queued again from step %s", job_id, job.steps[0][0] if job.steps else None)
    return job


def _current_version_of(session: Session, job_id: uuid.UUID) -> tuple[int, list[str]] | None:
    """The current version of the job's pipeline and its step types, if the job runs another
    version; None if it runs the current one (or does not exist)."""
    found = JobRepository(session).get(job_id)
    if found is None or found.status != JobStatus.FAILED:
        return None  # refused by the retry itself
    version_id = open_pipeline(session, found.pipeline_id)  # 409 if archived
    if version_id == found.pipeline_version_id:
        return None
    return version_id, step_types_of(session, version_id)


def describe_job(session: Session, job_id: uuid.UUID) -> JobView:
    job = JobRepository(session).get(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"there is no job {job_id}")
    return JobView.build(job, CarDetectionRepository(session).for_job(job_id))
