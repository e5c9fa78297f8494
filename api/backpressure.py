"""Refuse new jobs while too many are unfinished, instead of letting the backlog grow unbounded.

What is bounded: jobs in the database with status `queued` or `running` (a job waiting for the
model is `running`), at most MAX_QUEUED_JOBS, counted across every API process. Admission is
atomic: a submit stores its jobs, then takes the admission lock and counts (its own jobs
included), and commits only if the count is within the limit; else it rolls back and answers
503 `queue_full` with Retry-After, having stored nothing. Concurrent submits wait for the lock
in turn, so they cannot all see room for one more. What they count is kept by triggers on
`jobs` (migration 0007), so it costs the same whatever the backlog.

A count cached for QUEUE_DEPTH_CACHE_S refuses early, before the upload is stored, while the
limit is plainly reached; it never admits on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from api.errors import ApiError
from common.repositories import JobRepository
from common.settings import Settings

RETRY_AFTER_S = 5


class CachedCount:
    """A count recomputed at most once per `ttl` seconds; one caller counts, the others wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._value = 0
        self._at: float | None = None

    def get(self, count: Callable[[], int], ttl: float) -> int:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= ttl:
                self._value = count()
                self._at = now
            return self._value

    def forget(self) -> None:
        with self._lock:
            self._at = None


unfinished_jobs = CachedCount()


def _queue_full(depth: int, settings: Settings) -> ApiError:
    return ApiError(
        503,
        "queue_full",
        f"too many jobs are unfinished ({depth}, limit {settings.max_queued_jobs}, "
        f"MAX_QUEUED_JOBS); nothing was stored: try again in {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def refuse_early(session: Session, settings: Settings, adding: int = 1) -> None:
    """503 `queue_full` if the cached count says `adding` more jobs cannot fit; the count is
    taken at most once per QUEUE_DEPTH_CACHE_S (then in `session`, which holds no lock)."""
    depth = unfinished_jobs.get(
        lambda: JobRepository(session).count_unfinished(),
        settings.queue_depth_cache_s,
    )
    if depth + adding > settings.max_queued_jobs:
        raise _queue_full(depth, settings)


def commit_if_admitted(session: Session, settings: Settings, adding: int = 1) -> None:
    """Commit the session's transaction, which stored (or queued again) `adding` jobs, if the
    unfinished jobs, these included, are at most MAX_QUEUED_JOBS; else 503 `queue_full`, and
    nothing is committed (leaving the session's block rolls it back)."""
    unfinished = JobRepository(session).commit_if_admitted(settings.max_queued_jobs)
    if unfinished is not None:
        raise _queue_full(unfinished - adding, settings)
