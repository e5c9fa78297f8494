"""The recovery sweep. The job rows, not the broker, say what is unfinished.

Each worker's main process runs `sweep()` every RECOVERY_INTERVAL_S:
- a queued job the broker never took (the gateway could not reach it) is handed over now;
- a queued or running job that has not moved for RECOVERY_GRACE_S is handed over again, but only
  while the queue is empty: with messages waiting, the job may be among them (a backlog, not a
  loss). Its message was lost with a restarted Redis, or held by a worker that was killed;
- a job handed over RECOVERY_MAX_ENQUEUES times without finishing ends `failed`, saying so.

Handing a job over twice is safe: a step that already succeeded is skipped, and only the latest
attempt of a running step may record its result.

With JOB_RETENTION_DAYS set, the same timer then runs `expire()`: finished jobs untouched that
long are deleted, with their images, steps and detection.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery, bootsteps

from common.db import session_scope
from common.models import utcnow
from common.queue import enqueue_job, queue_depth
from common.repositories import JobRepository
from common.settings import get_settings

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class SweepResult:
    enqueued: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    not_taken: list[uuid.UUID] = field(default_factory=list)


def sweep(app: Celery) -> SweepResult:
    settings = get_settings()
    result = SweepResult()
    queue_empty = queue_depth(app) == 0
    steps: dict[uuid.UUID, list[tuple[int, str]]] = {}
    with session_scope() as session:
        jobs = JobRepository(session)
        candidates = list(jobs.never_enqueued(BATCH))
        if queue_empty:
            moved_before = utcnow() - timedelta(seconds=settings.recovery_grace_s)
            candidates += jobs.unfinished_and_still(moved_before, BATCH)
        for job in candidates:
            if job.enqueue_count >= settings.recovery_max_enqueues:
                jobs.fail(
                    job,
                    f"handed to the workers {job.enqueue_count} times without finishing; gave up",
                )
                result.failed.append(job.id)
            else:
                jobs.enqueued(job)
                result.enqueued.append(job.id)
                steps[job.id] = job.steps_to_run()
    for job_id in result.enqueued:
        try:
            enqueue_job(job_id, steps[job_id], app)
        except Exception as exc:  # noqa: BLE001 - the broker is down; the next sweep tries again
            log.warning("recovery: could not enqueue job %s: %r", job_id, exc)
            result.not_taken.append(job_id)
    if result.not_taken:
        with session_scope() as session:
            jobs = JobRepository(session)
            for job_id in result.not_taken:
                jobs.not_enqueued(job_id)
    if result.enqueued or result.failed:
        log.warning(
            "recovery: re-enqueued %d job(s), failed %d, broker refused %d",
            len(result.enqueued) - len(result.not_taken),
            len(result.failed),
            len(result.not_taken),
        )
    return result


# The retention sweep deletes at most EXPIRE_BATCHES batches a run, a transaction each, of up
# to EXPIRE_BATCH succeeded and EXPIRE_BATCH failed jobs: each holds its rows' locks briefly, and
# a backlog (retention just turned on) drains over several runs rather than in one long
# transaction. 2,000 jobs or more every RECOVERY_INTERVAL_S (10 s) outpaces any rate one
# database takes in.
EXPIRE_BATCH = 200
EXPIRE_BATCHES = 10


def expire() -> int:
    """Delete the finished jobs untouched for JOB_RETENTION_DAYS (none if it is 0), oldest
    first, in at most EXPIRE_BATCHES batches; returns how many. Workers sweeping at once delete
    different jobs (the rows one holds, the others pass over)."""
    days = get_settings().job_retention_days
    if not days:
        return 0
    untouched_since = utcnow() - timedelta(days=days)
    deleted = 0
    for _ in range(EXPIRE_BATCHES):
        with session_scope() as session:
            batch = JobRepository(session).delete_finished(untouched_since, EXPIRE_BATCH)
        deleted += batch
        if batch < EXPIRE_BATCH:
            break
    if deleted:
        log.info("retention: deleted %d finished job(s) untouched for %g days", deleted, days)
    return deleted


class RecoverySweep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the recovery sweep, then the retention sweep, on the worker's timer, in its main
    process."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        interval = get_settings().recovery_interval_s
        self.tref = worker.timer.call_repeatedly(interval, self._run, (worker.app,), priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    @staticmethod
    def _run(app: Celery) -> None:
        try:
            sweep(app)
        except Exception:  # a failed sweep must not stop the worker
            log.warning("recovery sweep failed; trying again next interval", exc_info=True)
        try:
            expire()
        except Exception:
            log.warning("retention sweep failed; trying again next interval", exc_info=True)
