"""Refuse new jobs while too many wait, instead of letting the queue grow without bound.

The depth is the number of jobs with status 'queued' in the database, the source of truth (a
broker's queue length misses jobs whose message a worker has reserved but not started, and
differs per transport). The figure is cached for a fraction of a second so that a burst of
uploads costs one count, not one per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from api.errors import ApiError
from common.models import JobStatus
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


queued_jobs = CachedCount()


def check_backpressure(session: Session, settings: Settings) -> None:
    """503 with Retry-After when MAX_QUEUED_JOBS or more jobs are waiting."""
    depth = queued_jobs.get(
        lambda: JobRepository(session).count_by_status(JobStatus.QUEUED),
        settings.queue_depth_cache_s,
    )
    if depth >= settings.max_queued_jobs:
        raise ApiError(
            503,
            "queue_full",
            f"too many jobs are waiting ({depth}, limit {settings.max_queued_jobs}); "
            f"try again in {RETRY_AFTER_S} s",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
