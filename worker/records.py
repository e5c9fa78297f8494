"""What a worker writes about a job besides a step's result: that it failed, or that a step
will be tried again. Each write checks, under the job's row lock, that it is still this run's
to make (the job exists, is not ended, and the step's attempt is current)."""

from __future__ import annotations

import logging
import time
import uuid

from celery.exceptions import Ignore

from common.db import session_scope
from common.models import JobStatus
from common.repositories import JobRepository

log = logging.getLogger(__name__)


class JobFailedError(Exception):
    """Raised once a job is marked failed: Celery then stops the chain and shows the failure."""


class SupersededError(Exception):
    """A newer attempt of the step took over, or the job ended meanwhile."""


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading), to 0.1 ms: a step's
    duration as the job shows it; finer digits are noise."""
    return round((time.perf_counter() - started) * 1000, 1)


def internal(exc: Exception) -> str:
    """What a client sees of a fault of ours: its kind, never its repr; the log has the rest."""
    return f"internal error ({type(exc).__name__}); the worker's log has the details"


def fail(
    jid: uuid.UUID, reason: str, position: int, attempt: int, started: float
) -> JobFailedError | Ignore:
    """Mark the job failed at step `position` (from 1), unless `attempt` is no longer the
    step's current one; `started` is the step's time.perf_counter() start. The caller raises
    what this returns: JobFailedError, or Ignore if another run has the step now."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None or not jobs.is_current_attempt(job, position, attempt):
            return Ignore()
        jobs.fail(job, reason, position, elapsed_ms(started))
    log.warning("job failed: %s", reason)
    return JobFailedError(reason)


def fail_unstarted(jid: uuid.UUID, reason: str) -> JobFailedError | Ignore:
    """Mark the job failed before a step of it started; the caller raises what this returns
    (Ignore if the job is gone or ended already)."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None or JobStatus(job.status).terminal:
            return Ignore()
        jobs.fail(job, reason)
    log.warning("job failed: %s", reason)
    return JobFailedError(reason)


def note_retry(jid: uuid.UUID, position: int, attempt: int, message: str) -> None:
    """Show on the job's step why it waits for another attempt, if `attempt` is current."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is not None and jobs.is_current_attempt(job, position, attempt):
            jobs.note_step_error(job, position, message)
