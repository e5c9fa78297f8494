"""Several images in one request: one job each, all accepted or none stored."""

from __future__ import annotations

import logging

from fastapi import UploadFile

from api.backpressure import commit_if_admitted, refuse_early
from api.deps import db_session
from api.errors import ApiError
from api.services import hand_over, open_pipeline, read_image, step_types_of
from common.repositories import ORIGINAL, ImageRepository, JobRepository, QueuedJob
from common.settings import Settings

log = logging.getLogger(__name__)


def _at(index: int, upload: UploadFile, exc: ApiError) -> ApiError:
    """The upload's error, saying which file it is about (index from 0, in upload order)."""
    name = f" ({upload.filename[:100]!r})" if upload.filename else ""
    return ApiError(
        exc.status_code,
        exc.detail.code,
        f"images[{index}]{name}: {exc.detail.message}; nothing was stored",
        details=[{"index": index, "filename": upload.filename}],
        headers=exc.headers,
    )


def submit_batch(
    settings: Settings, pipeline_id: int, uploads: list[UploadFile]
) -> list[QueuedJob]:
    """One job per image, in upload order, admitted together or not at all (api.backpressure).
    Every image is checked before anything is stored; the uploads stay spooled on disk, and
    are streamed into the database from there. One session, opened and closed on the calling
    thread."""
    if len(uploads) > settings.max_batch_images:
        raise ApiError(
            422,
            "too_many_images",
            f"the batch has {len(uploads)} images; the limit is {settings.max_batch_images} "
            "(MAX_BATCH_IMAGES): send the rest in another batch",
        )
    with db_session() as session:
        refuse_early(session, settings, len(uploads))
        version_id = open_pipeline(session, pipeline_id)
        session.rollback()  # no transaction stays open while the images are checked
        checked = []
        for index, upload in enumerate(uploads):
            try:
                checked.append(read_image(upload, settings))
            except ApiError as exc:
                raise _at(index, upload, exc) from exc
        step_types = step_types_of(session, version_id)
        jobs_repo, images = JobRepository(session), ImageRepository(session)
        jobs = []
        for upload, (size, content_type) in zip(uploads, checked, strict=True):
            job = jobs_repo.insert(pipeline_id, step_types, version_id)
            images.put_file(job.id, ORIGINAL, content_type, upload.file, size)
            jobs.append(job)
        commit_if_admitted(session, settings, len(jobs))
        for job in jobs:
            hand_over(session, job.id, job.pipeline_id, job.steps)
    log.info("batch of %d jobs queued for pipeline %d", len(jobs), pipeline_id)
    return jobs
