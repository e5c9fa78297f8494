"""The one submit path: POST /jobs, POST /jobs/batch and POST /process_image/ store their
images as jobs here. A single upload is a batch of one.

Burst safety (api.deps, api.backpressure): every image is checked before a session opens; the
session is opened and closed on the calling thread; admission takes its lock, counts and
commits in one round trip; the broker is sent the jobs only after that commit.
"""

from __future__ import annotations

import logging
import uuid
from threading import Lock

from cachetools import LRUCache, cached
from fastapi import UploadFile
from sqlalchemy.orm import Session

from api.backpressure import commit_if_admitted, refuse_early
from api.deps import db_session
from api.errors import ApiError
from api.metrics import job_submitted
from api.uploads import check_image, file_size, image_bytes
from common.pipeline import parse_config
from common.pipeline import registry as pipeline_registry
from common.queue import enqueue_job
from common.repositories import (
    ORIGINAL,
    ImageRepository,
    JobRepository,
    PipelineRepository,
    QueuedJob,
)
from common.settings import Settings

log = logging.getLogger(__name__)

# An upload up to this size (bytes; the multipart parser keeps it in memory) is stored with its
# job in one statement; a larger one streams into the database within the transaction.
INLINE_UPLOAD_MAX = 1024 * 1024

# Pipeline id -> the id of its current version, as this process last saw it. A submit stores
# its jobs on the condition that this is still so (JobRepository.insert_if_current), and asks
# the database only when it is not: a new version, an archived pipeline, another process's
# change. Threads of the API's pool share it, hence the lock.
_current_versions: LRUCache[int, int] = LRUCache(maxsize=1024)
_current_lock = Lock()


def submit(
    settings: Settings, pipeline_id: int, uploads: list[UploadFile], *, batch: bool = False
) -> list[QueuedJob]:
    """One job per upload, in upload order, admitted together or not at all; nothing is stored
    for a refused request. With `batch`, an image's error names its index and file name.

    Raises ApiError: 422 `too_many_images` (over MAX_BATCH_IMAGES), the upload checks' 413/415/
    422, 404 `pipeline_not_found`, 409 `pipeline_archived` / `pipeline_changed`, 503
    `queue_full`."""
    if len(uploads) > settings.max_batch_images:
        raise ApiError(
            422,
            "too_many_images",
            f"the batch has {len(uploads)} images; the limit is {settings.max_batch_images} "
            "(MAX_BATCH_IMAGES): send the rest in another batch",
        )
    checked = [_checked(index, upload, settings, batch) for index, upload in enumerate(uploads)]
    with db_session() as session:
        refuse_early(session, settings, len(uploads))
        jobs = _store(session, pipeline_id, checked)
        commit_if_admitted(session, settings, len(jobs))
        for job in jobs:
            hand_over(session, job.id, job.pipeline_id, job.steps)  # logs the job's id
    if batch:
        log.info("batch of %d jobs queued for pipeline %d", len(jobs), pipeline_id)
    return jobs


Checked = tuple[UploadFile, int, str]  # the upload, its size in bytes, its content type


def _checked(index: int, upload: UploadFile, settings: Settings, batch: bool) -> Checked:
    """The upload with its size and image type, or a 4xx saying what is wrong; the file is
    left at its start, to be stored from."""
    try:
        size = file_size(upload.file, settings.max_upload_bytes)
        with image_bytes(upload.file) as data:
            return upload, size, check_image(data, settings).content_type
    except ApiError as exc:
        if not batch:
            raise
        name = f" ({upload.filename[:100]!r})" if upload.filename else ""
        raise ApiError(
            exc.status_code,
            exc.detail.code,
            f"images[{index}]{name}: {exc.detail.message}; nothing was stored",
            details=[{"index": index, "filename": upload.filename}],
            headers=exc.headers,
        ) from exc


def _store(session: Session, pipeline_id: int, checked: list[Checked]) -> list[QueuedJob]:
    """Store the jobs under the pipeline's current version: in one statement each for small
    images when the version this process remembers is still current."""
    large = any(size > INLINE_UPLOAD_MAX for _, size, _ in checked)
    for attempt in range(4):  # the version read may change before the insert; rarely twice
        with _current_lock:
            known = None if large or attempt else _current_versions.get(pipeline_id)
        version_id = known if known is not None else open_pipeline(session, pipeline_id)
        with _current_lock:
            _current_versions[pipeline_id] = version_id
        stored = _store_under(session, pipeline_id, version_id, checked)
        if stored is not None:
            return stored
    raise _pipeline_changed(pipeline_id)


def _store_under(
    session: Session, pipeline_id: int, version_id: int, checked: list[Checked]
) -> list[QueuedJob] | None:
    """The jobs, stored under `version_id`; None (nothing stored) if it is no longer current."""
    jobs, images = JobRepository(session), ImageRepository(session)
    step_types = step_types_of(session, version_id)
    stored: list[QueuedJob] = []
    for upload, size, content_type in checked:
        if size > INLINE_UPLOAD_MAX:
            job = jobs.insert(pipeline_id, step_types, version_id)
            images.put_file(job.id, ORIGINAL, content_type, upload.file, size)
        else:
            upload.file.seek(0)
            image = (content_type, upload.file.read())
            found = jobs.insert_if_current(pipeline_id, step_types, version_id, image)
            if found is None:
                if stored:  # the version changed within this request: drop what it stored
                    raise _pipeline_changed(pipeline_id)
                return None
            job = found
        stored.append(job)
    return stored


def _pipeline_changed(pipeline_id: int) -> ApiError:
    return ApiError(
        409,
        "pipeline_changed",
        f"pipeline {pipeline_id} kept changing while the job was being stored; nothing was "
        "stored: send it again",
    )


def open_pipeline(session: Session, pipeline_id: int) -> int:
    """The id of the pipeline's current version, the one a job submitted now runs.

    Raises ApiError: 404 `pipeline_not_found`, 409 `pipeline_archived`."""
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
    """The version's step type ids, in order (an alias of the earlier config format as its
    type id). A stored version never changes: worked out once per process (the 1024 last)."""
    return list(_step_types(session, version_id))


@cached(LRUCache(maxsize=1024), key=lambda _session, version_id: version_id, lock=Lock())
def _step_types(session: Session, version_id: int) -> tuple[str, ...]:
    version = PipelineRepository(session).version_by_id(version_id)
    assert version is not None, f"there is no pipeline version {version_id}"
    registry = pipeline_registry()
    found = []
    for step in parse_config(version.config).steps:
        known = registry.step(step.type)
        found.append(step.type if known is None else known.manifest.type_id)
    return tuple(found)


def hand_over(
    session: Session,
    job_id: uuid.UUID,
    pipeline_id: int,
    steps: list[tuple[int, str]],
    kind: str = "new",
) -> None:
    """Enqueue a committed job's `steps` still to run, (position from 1, step type) each (a
    worker must find the job it is handed).

    The job is already safe in the database: if the broker cannot take it now, it stays queued
    and the workers' recovery sweep hands it over once the broker is back."""
    job_submitted(job_id, pipeline_id, kind)
    try:
        enqueue_job(job_id, steps)
    except Exception as exc:  # noqa: BLE001 - any broker failure means "later", not "lost"
        log.warning("broker unavailable; job %s left to the recovery sweep: %r", job_id, exc)
        JobRepository(session).not_enqueued(job_id)
        session.commit()
