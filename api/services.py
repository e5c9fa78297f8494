"""What the routes do, apart from HTTP: accept a job, describe a job."""

from __future__ import annotations

import logging
import uuid
from typing import TypeVar

from fastapi import UploadFile
from sqlalchemy.orm import Session

from api.backpressure import commit_if_admitted, refuse_early
from api.catalogue import registry as catalogue_registry
from api.deps import db_session
from api.errors import ApiError
from api.metrics import job_submitted
from api.schemas import JobView
from api.uploads import check_image, file_size, image_bytes
from common.models import JobStatus
from common.pipeline import parse_config
from common.queue import enqueue_job
from common.repositories import (
    ORIGINAL,
    CarDetectionRepository,
    ImageRepository,
    JobRepository,
    PipelineRepository,
    QueuedJob,
)
from common.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def read_image(upload: UploadFile, settings: Settings) -> tuple[int, str]:
    """The upload's size and image type, or a 4xx saying what is wrong; the file is left at its
    start, to be stored from."""
    size = file_size(upload.file, settings.max_upload_bytes)
    with image_bytes(upload.file) as data:
        return size, check_image(data, settings).content_type


def open_pipeline(session: Session, pipeline_id: int) -> int:
    """The id of the pipeline's current version, the one a job submitted now runs; 404 if
    there is no such pipeline, 409 if it is archived."""
    found = PipelineRepository(session).current_version_id(pipeline_id)
    if found is None:
        raise ApiError(404, "pipeline_not_found", f"there is no pipeline {pipeline_id}")
    version_id, archived_at = found
    if archived_at is not None:
        raise ApiError(
            409,
            "pipeline_archived",
            f"pipeline {pipeline_id} was archived at {archived_at.isoformat()} and "
            "takes no new jobs; choose another pipeline",
        )
    return version_id


def step_types_of(session: Session, version_id: int) -> list[str]:
    """The version's step type ids (an alias of the earlier config format as its type id).
    A stored version never changes: its step types are worked out once per process."""
    found = _step_types.get(version_id)
    if found is None:
        version = PipelineRepository(session).version_by_id(version_id)
        assert version is not None, f"there is no pipeline version {version_id}"
        registry = catalogue_registry()
        found = []
        for step in parse_config(version.config).steps:
            known = registry.step(step.type)
            found.append(step.type if known is None else known.manifest.type_id)
        _remember(_step_types, version_id, found)
    return list(found)


def _remember(cache: dict[int, T], key: int, value: T) -> None:
    """Keep `value` in a per-process cache, emptied when it reaches _MAX_VERSIONS entries."""
    if len(cache) >= _MAX_VERSIONS:
        cache.clear()
    cache[key] = value


_step_types: dict[int, list[str]] = {}
_MAX_VERSIONS = 1024

# Pipeline id -> the id of its current version, as this process last saw it. A submit stores
# its job on the condition that this is still so (JobRepository.insert_if_current), and asks
# the database only when it is not: a new version, an archived pipeline, another process's
# change.
_current_versions: dict[int, int] = {}

# An upload up to this size (the multipart parser keeps it in memory) is stored with its job
# in one statement; a larger one streams into the database within a transaction.
INLINE_UPLOAD_MAX = 1024 * 1024


def submit_job(settings: Settings, pipeline_id: int, upload: UploadFile) -> QueuedJob:
    """Store the job and its image, admit it (api.backpressure), then enqueue it; nothing is
    stored for a refused request. One session, opened and closed on the calling thread."""
    size, content_type = read_image(upload, settings)
    with db_session() as session:
        refuse_early(session, settings)
        jobs = JobRepository(session)
        if size <= INLINE_UPLOAD_MAX:
            job = _insert_inline(session, pipeline_id, (content_type, upload.file.read()))
        else:
            version_id = open_pipeline(session, pipeline_id)
            job = jobs.insert(pipeline_id, step_types_of(session, version_id), version_id)
            ImageRepository(session).put_file(job.id, ORIGINAL, content_type, upload.file, size)
        commit_if_admitted(session, settings)
        hand_over(session, job.id, job.pipeline_id, job.steps)  # logs the job's id
    return job


def _insert_inline(session: Session, pipeline_id: int, image: tuple[str, bytes]) -> QueuedJob:
    """Store a job with its image under the pipeline's current version: in one statement when
    the version this process remembers is still current."""
    jobs = JobRepository(session)
    known = _current_versions.get(pipeline_id)
    if known is not None:
        job = jobs.insert_if_current(pipeline_id, step_types_of(session, known), known, image)
        if job is not None:
            return job
    for _ in range(3):  # the version read may change before the insert; rarely twice
        version_id = open_pipeline(session, pipeline_id)  # 404, 409
        _remember(_current_versions, pipeline_id, version_id)
        step_types = step_types_of(session, version_id)
        job = jobs.insert_if_current(pipeline_id, step_types, version_id, image)
        if job is not None:
            return job
    raise ApiError(
        409,
        "pipeline_changed",
        f"pipeline {pipeline_id} kept changing while the job was being stored; nothing was "
        "stored: send it again",
    )


def hand_over(
    session: Session,
    job_id: uuid.UUID,
    pipeline_id: int,
    steps: list[tuple[int, str]],
    kind: str = "new",
) -> None:
    """Enqueue a committed job's `steps` still to run (a worker must find the job it is
    handed).

    The job is already safe in the database: if the broker cannot take it now, it stays queued
    and the workers' recovery sweep hands it over once the broker is back.
    """
    job_submitted(job_id, pipeline_id, kind)
    try:
        enqueue_job(job_id, steps)
    except Exception as exc:  # noqa: BLE001 - any broker failure means "later", not "lost"
        log.warning("broker unavailable; job %s left to the recovery sweep: %r", job_id, exc)
        JobRepository(session).not_enqueued(job_id)
        session.commit()


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
