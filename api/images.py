"""A job's stored images as HTTP answers: the bytes, their type, and how long they may be cached."""

from __future__ import annotations

import enum
import uuid

from fastapi import Response
from sqlalchemy.orm import Session

from api.errors import ApiError
from common.imagetypes import SUPPORTED
from common.models import JobImage, JobStatus
from common.repositories import ImageRepository, JobRepository


class Variant(enum.StrEnum):
    ORIGINAL = "original"
    PROCESSED = "processed"
    ANNOTATED = "annotated"


# The upload never changes. What steps write may be written again until the job has succeeded
# (a failed job can be retried), so until then a cache must check back (the ETag makes that
# cheap). Private: with API keys, a shared cache must not hand the bytes to anyone else.
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"

IMAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The image's bytes, with their type (as stored).",
        "content": {
            content_type: {"schema": {"type": "string", "format": "binary"}}
            for content_type in SUPPORTED
        },
    },
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
}


def _etag(image: JobImage) -> str:
    return f'"{image.id}-{int(image.created_at.timestamp() * 1_000_000)}-{image.size}"'


def image_response(
    session: Session, job_id: uuid.UUID, variant: Variant, if_none_match: str | None
) -> Response:
    state = JobRepository(session).status(job_id)
    if state is None:
        raise ApiError(404, "job_not_found", f"there is no job {job_id}")
    image = ImageRepository(session).get(job_id, variant.value)
    if image is None:
        raise ApiError(
            404,
            "image_not_found",
            f"job {job_id} has no {variant.value} image (status {state[0]}); the job's steps "
            "decide which images it has",
        )
    settled = variant == Variant.ORIGINAL or state[0] == JobStatus.SUCCEEDED
    etag = _etag(image)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if settled else REVALIDATE}
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(content=image.data, media_type=image.content_type, headers=headers)
