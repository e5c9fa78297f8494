"""GET /jobs: filters, and pages that follow an opaque cursor (the last job's created_at and id)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from api.errors import ApiError
from api.schemas import JobPage, JobView
from common.repositories import CarDetectionRepository, JobFilter, JobRepository

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    key = json.dumps([created_at.astimezone(UTC).isoformat(), str(job_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) key a cursor carries; 422 for one this API did not give out."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        at, job_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(job_id, str):
            raise TypeError
        created_at = datetime.fromisoformat(at)
        if created_at.tzinfo is None:
            raise ValueError
        return created_at, uuid.UUID(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:  # UnicodeError is a ValueError
        raise ApiError(
            422,
            "invalid_cursor",
            "cursor is not one this API gave out; pass next_cursor from the previous page "
            "unchanged, or leave it out to start from the newest job",
            details=[{"field": "query.cursor", "message": "not a cursor of GET /jobs"}],
        ) from exc


def as_utc(value: datetime | None, field: str) -> datetime | None:
    """A filter time in UTC; a time without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ApiError(
            422,
            "invalid_request",
            f"{field}: the time is out of range",
            details=[{"field": f"query.{field}", "message": "out of range"}],
        ) from exc


def list_jobs(session: Session, where: JobFilter, limit: int, cursor: str | None) -> JobPage:
    after = None if cursor is None else decode_cursor(cursor)
    since, until = where.created_since, where.created_until
    if since is not None and until is not None and since > until:
        raise ApiError(
            422,
            "invalid_request",
            "created_since is later than created_until; no job can match",
            details=[{"field": "query.created_since", "message": "later than created_until"}],
        )
    # One more than asked for says whether another page follows.
    jobs = list(JobRepository(session).page(where, limit + 1, after))
    more = len(jobs) > limit
    jobs = jobs[:limit]
    detections = CarDetectionRepository(session).for_jobs(job.id for job in jobs)
    items = [JobView.build(job, detections.get(job.id)) for job in jobs]
    last = jobs[-1] if more else None
    return JobPage(
        items=items,
        next_cursor=None if last is None else encode_cursor(last.created_at, last.id),
    )
