"""A job's states once stored: handed to the broker, swept up, succeeded, failed, queued again."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, bindparam, delete, func, select, text, update

from common.messages import client_text
from common.models import CarDetectionRow, Job, JobStatus, StepStatus, utcnow
from common.repositories._base import Repository, images_table, jobs_table, steps_table
from common.repositories.images import ORIGINAL


@dataclass(frozen=True)
class QueuedJob:
    """A job just stored, as the hand-over to the workers needs it."""

    id: uuid.UUID
    pipeline_id: int
    steps: list[tuple[int, str]]  # (position, step type), all pending


class JobStates(Repository):
    """The state changes of `JobRepository` after the insert."""

    _INSERT_STEPS = steps_table.insert()

    def _insert_steps(self, job_id: uuid.UUID, steps: Sequence[tuple[int, str]]) -> None:
        """The job's steps (position, step type), all pending."""
        if steps:
            self.session.execute(
                self._INSERT_STEPS,
                [
                    {
                        "job_id": job_id,
                        "position": position,
                        "step_type": step_type,
                        "status": StepStatus.PENDING,
                        "attempts": 0,
                    }
                    for position, step_type in steps
                ],
            )

    def set_step_types(self, job: Job, step_types: Sequence[str]) -> None:
        """The job's steps run `step_types` (position by position)."""
        for step, step_type in zip(job.steps, step_types, strict=True):
            step.step_type = step_type

    def not_enqueued(self, job_id: uuid.UUID) -> None:
        """The broker did not take the job: the recovery sweep will hand it over."""
        self.session.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(enqueued_at=None, enqueue_count=jobs_table.c.enqueue_count - 1)
        )

    def enqueued(self, job: Job) -> None:
        now = utcnow()
        job.enqueued_at = now
        job.enqueue_count += 1
        job.updated_at = now

    def never_enqueued(self, limit: int) -> Sequence[Job]:
        """Queued jobs the broker never took; locked, skipping rows another sweeper holds."""
        stmt = (
            select(Job)
            .where(Job.status == JobStatus.QUEUED, Job.enqueued_at.is_(None))
            .order_by(Job.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(stmt).all()

    def unfinished_and_still(self, moved_before: datetime, limit: int) -> Sequence[Job]:
        """Queued or running jobs that have not moved since `moved_before` and have no step
        held by a live lease (a long step still running; by the database's clock, which leases
        are set on); locked, skipping rows another sweeper holds."""
        leased = (
            select(steps_table.c.job_id)
            .where(
                steps_table.c.job_id == Job.id,
                steps_table.c.lease_expires_at > func.now(),
            )
            .exists()
        )
        stmt = (
            select(Job)
            .where(
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
                Job.updated_at < moved_before,
                ~leased,
            )
            .order_by(Job.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(stmt).all()

    def succeed(self, job: Job) -> None:
        now = utcnow()
        job.status = JobStatus.SUCCEEDED
        job.finished_at = now
        job.updated_at = now

    def fail(
        self,
        job: Job,
        error: str,
        position: int | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Mark the job (and the step at `position`) failed; the error is stored as
        common.messages.client_text makes it, since clients are shown it."""
        error = client_text(error)
        now = utcnow()
        if position is not None:
            step = job.steps[position - 1]
            step.status = StepStatus.FAILED
            step.finished_at = now
            step.duration_ms = duration_ms
            step.error = error
            step.lease_expires_at = None
        job.status = JobStatus.FAILED
        job.error = error
        job.finished_at = now
        job.updated_at = now

    def requeue_failed(
        self, job_id: uuid.UUID, rerun: tuple[int, Sequence[str]] | None = None
    ) -> QueuedJob | None:
        """Queue a failed job again, in the caller's transaction: the steps that did not succeed
        run again, the others keep their results. With `rerun` (a pipeline version's id and its
        step types), the job runs that version instead, every step from the first, on its
        original image: what earlier steps made (payload, images, detection) is dropped.

        The job with the steps to run; None, and nothing changed, if the job is not failed or
        does not exist. One conditional update decides, so of concurrent
        calls exactly one gets the steps; it locks the job's row until the caller's commit."""
        now = utcnow()
        queued = self.session.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.FAILED)
            .values(
                status=JobStatus.QUEUED,
                error=None,
                finished_at=None,
                updated_at=now,
                enqueued_at=now,
                enqueue_count=1,
            )
            .returning(jobs_table.c.pipeline_id)
        ).first()
        if queued is None:
            return None
        pipeline_id = int(queued.pipeline_id)
        if rerun is None:
            self.session.execute(
                update(steps_table)
                .where(steps_table.c.job_id == job_id, steps_table.c.status != StepStatus.SUCCEEDED)
                .values(
                    status=StepStatus.PENDING,
                    error=None,
                    finished_at=None,
                    duration_ms=None,
                    output=None,
                )
            )
            rows = self.session.execute(
                select(steps_table.c.position, steps_table.c.step_type)
                .where(steps_table.c.job_id == job_id, steps_table.c.status != StepStatus.SUCCEEDED)
                .order_by(steps_table.c.position)
            )
            return QueuedJob(job_id, pipeline_id, [(int(n), str(t)) for n, t in rows])
        version_id, step_types = rerun
        self.session.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(pipeline_version_id=version_id, payload={}, current_step=None)
        )
        self.session.execute(delete(steps_table).where(steps_table.c.job_id == job_id))
        self.session.execute(
            delete(images_table).where(
                images_table.c.job_id == job_id, images_table.c.variant != ORIGINAL
            )
        )
        self.session.execute(delete(CarDetectionRow).where(CarDetectionRow.job_id == job_id))
        steps = list(enumerate(step_types, start=1))
        self._insert_steps(job_id, steps)
        return QueuedJob(job_id, pipeline_id, steps)

    # Finished jobs untouched since the cutoff, oldest first (one status at a time, so that each
    # is a range of ix_jobs_status_updated_at read in order: ordering both at once sorted every
    # old job, 0.7 s a batch over a million), deleted with everything that is
    # theirs (ON DELETE CASCADE: steps, images, detection) and added to expired_job_counts in
    # the same statement, so that a scrape sees each job either stored or counted there. A row
    # another transaction holds (a retry queueing it again) is passed over, and one that
    # changed meanwhile is checked again against the WHERE (READ COMMITTED's re-check).
    _DELETE_FINISHED = text(
        """
        WITH succeeded AS (
            SELECT id FROM jobs
             WHERE status = 'succeeded' AND updated_at < :p_cutoff
             ORDER BY updated_at LIMIT :p_limit
               FOR UPDATE SKIP LOCKED
        ), failed AS (
            SELECT id FROM jobs
             WHERE status = 'failed' AND updated_at < :p_cutoff
             ORDER BY updated_at LIMIT :p_limit
               FOR UPDATE SKIP LOCKED
        ), gone AS (
            DELETE FROM jobs
             WHERE id IN (SELECT id FROM succeeded UNION ALL SELECT id FROM failed)
            RETURNING jobs.pipeline_id, jobs.status
        ), counted AS (
            INSERT INTO expired_job_counts (pipeline_id, outcome, jobs)
            SELECT pipeline_id, status, count(*) FROM gone GROUP BY pipeline_id, status
            ON CONFLICT (pipeline_id, outcome)
               DO UPDATE SET jobs = expired_job_counts.jobs + excluded.jobs
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """
    ).bindparams(bindparam("p_cutoff", type_=DateTime(timezone=True)))

    def delete_finished(self, untouched_since: datetime, limit: int) -> int:
        """Delete at most `limit` succeeded and `limit` failed jobs whose last change is older
        than `untouched_since`, oldest first, with their steps, images and detection; returns
        how many. Two ranges of ix_jobs_status_updated_at: the cost is the batch's, whatever
        the number of jobs kept (2.8 ms to pick 400 among a million)."""
        return int(
            self.session.execute(
                self._DELETE_FINISHED, {"p_cutoff": untouched_since, "p_limit": limit}
            ).scalar_one()
        )

    def is_current_attempt(self, job: Job, position: int, attempt: int) -> bool:
        """False once the job ended or a newer attempt of the step took over."""
        step = job.steps[position - 1]
        return (
            job.status == JobStatus.RUNNING
            and step.status == StepStatus.RUNNING
            and step.attempts == attempt
        )

    def note_step_error(self, job: Job, position: int, error: str) -> None:
        """A failed attempt that will be retried: the step stays running, with the error shown
        (as common.messages.client_text makes it), and lets its lease go, so that the retry may
        claim it."""
        step = job.steps[position - 1]
        step.error = client_text(error)
        step.lease_expires_at = None
        job.updated_at = utcnow()
