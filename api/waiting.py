"""Waiting for a job to end without holding a thread: short status reads, asyncio sleeps between."""

from __future__ import annotations

import asyncio
import time
import uuid

from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from common.db import session_scope
from common.models import JobStatus
from common.repositories import JobRepository

FIRST_POLL_S = 0.02
MAX_POLL_S = 0.25


def _status(job_id: uuid.UUID) -> tuple[JobStatus, str | None]:
    with session_scope() as session:
        found = JobRepository(session).status(job_id)
    if found is None:
        raise ApiError(404, "job_not_found", f"there is no job {job_id}")
    return JobStatus(found[0]), found[1]


async def wait_for_job(job_id: uuid.UUID, timeout: float) -> tuple[JobStatus, str | None] | None:
    """The job's final status and error once it ends, or None if it has not after `timeout` s.

    Only the status reads use the thread pool (each a moment); the waits are asyncio sleeps,
    so a waiting request costs no thread. Polls start quick and back off to MAX_POLL_S.
    """
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL_S
    while True:
        status, error = await run_in_threadpool(_status, job_id)
        if status.terminal:
            return status, error
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, MAX_POLL_S)
