"""Repositories: the only code that queries tables. Each wraps one session; callers commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, load_only

from common.models import (
    CarDetectionRow,
    Job,
    JobImage,
    JobStatus,
    JobStep,
    Pipeline,
    StepStatus,
    utcnow,
)
from common.pipeline.datatypes import Detection

ORIGINAL = "original"
PROCESSED = "processed"


class _Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _upsert(
        self, model: Any, values: dict[str, Any], key: Sequence[str], update: Sequence[str]
    ) -> None:
        """Insert a row, or update it in place when one with the same `key` exists."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(model).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={name: stmt.excluded[name] for name in update},
        )
        self.session.execute(stmt)


class PipelineRepository(_Repository):
    def get(self, pipeline_id: int) -> Pipeline | None:
        return self.session.get(Pipeline, pipeline_id)

    def list(self) -> Sequence[Pipeline]:
        return self.session.scalars(select(Pipeline).order_by(Pipeline.id)).all()

    def add(
        self, name: str, description: str, config: dict[str, Any], pipeline_id: int | None = None
    ) -> Pipeline:
        pipeline = Pipeline(id=pipeline_id, name=name, description=description, config=config)
        self.session.add(pipeline)
        self.session.flush()
        return pipeline

    def sync_id_sequence(self) -> None:
        """After inserting explicit ids, move PostgreSQL's sequence past them."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('pipelines', 'id'), "
                    "(SELECT COALESCE(MAX(id), 1) FROM pipelines))"
                )
            )


class JobRepository(_Repository):
    def add(self, pipeline_id: int, step_types: Sequence[str]) -> Job:
        """A queued job, counted as handed to the broker (see `not_enqueued` if that fails)."""
        now = utcnow()
        job = Job(
            pipeline_id=pipeline_id,
            status=JobStatus.QUEUED,
            payload={},
            created_at=now,
            updated_at=now,
            enqueued_at=now,
            enqueue_count=1,
            steps=[
                JobStep(position=position, step_type=step_type, status=StepStatus.PENDING)
                for position, step_type in enumerate(step_types, start=1)
            ],
        )
        self.session.add(job)
        self.session.flush()
        return job

    def get(
        self, job_id: uuid.UUID, *, for_update: bool = False, fresh: bool = False
    ) -> Job | None:
        """The job with its steps; `fresh` re-reads rows this session has loaded before."""
        return self.session.get(Job, job_id, with_for_update=for_update, populate_existing=fresh)

    def count_by_status(self, status: str) -> int:
        stmt = select(func.count()).select_from(Job).where(Job.status == status)
        return int(self.session.scalar(stmt) or 0)

    def not_enqueued(self, job: Job) -> None:
        """The broker did not take the job: the recovery sweep will hand it over."""
        job.enqueued_at = None
        job.enqueue_count -= 1

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
        """Queued or running jobs that have not moved since `moved_before`; locked, skipping
        rows another sweeper holds."""
        stmt = (
            select(Job)
            .where(
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
                Job.updated_at < moved_before,
            )
            .order_by(Job.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self.session.scalars(stmt).all()

    def set_step_types(self, job: Job, step_types: Sequence[str]) -> None:
        for step, step_type in zip(job.steps, step_types, strict=True):
            step.step_type = step_type

    def start_step(self, job: Job, position: int) -> int:
        """Mark the step running; returns the attempt number, which fences off older attempts."""
        now = utcnow()
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.RUNNING
            job.started_at = now
        job.current_step = position
        job.updated_at = now
        step = job.steps[position - 1]
        step.status = StepStatus.RUNNING
        step.attempts += 1
        step.started_at = now
        step.error = None
        return step.attempts

    def is_current_attempt(self, job: Job, position: int, attempt: int) -> bool:
        """False once the job ended or a newer attempt of the step took over."""
        step = job.steps[position - 1]
        return (
            job.status == JobStatus.RUNNING
            and step.status == StepStatus.RUNNING
            and step.attempts == attempt
        )

    def finish_attempt(
        self,
        job_id: uuid.UUID,
        position: int,
        attempt: int,
        duration_ms: float,
        payload: dict[str, Any],
        *,
        last: bool,
    ) -> bool:
        """Record a step's success, if `attempt` is still its current one; else False.

        Plain UPDATEs under the job's row lock (the lock a claim takes too): a step's hot path
        does not need the job and its steps loaded as objects.
        """
        now = utcnow()
        self.session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
        step = self.session.execute(
            update(JobStep)
            .where(
                JobStep.job_id == job_id,
                JobStep.position == position,
                JobStep.attempts == attempt,
                JobStep.status == StepStatus.RUNNING,
            )
            .values(status=StepStatus.SUCCEEDED, finished_at=now, duration_ms=duration_ms)
        )
        if step.rowcount != 1:  # type: ignore[attr-defined]
            return False
        values: dict[str, Any] = {"payload": payload, "updated_at": now}
        if last:
            values.update(status=JobStatus.SUCCEEDED, finished_at=now)
        job = self.session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING).values(**values)
        )
        return bool(job.rowcount == 1)  # type: ignore[attr-defined]

    def note_step_error(self, job: Job, position: int, error: str) -> None:
        """A failed attempt that will be retried: the step stays running, with the error shown."""
        job.steps[position - 1].error = error
        job.updated_at = utcnow()

    def fail(
        self,
        job: Job,
        error: str,
        position: int | None = None,
        duration_ms: float | None = None,
    ) -> None:
        now = utcnow()
        if position is not None:
            step = job.steps[position - 1]
            step.status = StepStatus.FAILED
            step.finished_at = now
            step.duration_ms = duration_ms
            step.error = error
        job.status = JobStatus.FAILED
        job.error = error
        job.finished_at = now
        job.updated_at = now

    def reset_for_retry(self, job: Job) -> None:
        """Queue a failed job again: the steps that did not succeed run again, the rest stay."""
        now = utcnow()
        for step in job.steps:
            if step.status != StepStatus.SUCCEEDED:
                step.status = StepStatus.PENDING
                step.error = None
                step.finished_at = None
                step.duration_ms = None
        job.status = JobStatus.QUEUED
        job.error = None
        job.finished_at = None
        job.updated_at = now
        job.enqueued_at = now
        job.enqueue_count = 1


class ImageRepository(_Repository):
    def put(self, job_id: uuid.UUID, variant: str, content_type: str, data: bytes) -> None:
        self._upsert(
            JobImage,
            {
                "job_id": job_id,
                "variant": variant,
                "content_type": content_type,
                "size": len(data),
                "data": data,
                "created_at": utcnow(),
            },
            key=("job_id", "variant"),
            update=("content_type", "size", "data", "created_at"),
        )

    def get(self, job_id: uuid.UUID, variant: str) -> JobImage | None:
        return self.session.scalar(
            select(JobImage).where(JobImage.job_id == job_id, JobImage.variant == variant)
        )

    def current(self, job_id: uuid.UUID, *, with_data: bool = False) -> JobImage | None:
        """The image the job's steps work on: the processed one once a step produced it."""
        stmt = (
            select(JobImage)
            .where(JobImage.job_id == job_id, JobImage.variant.in_((ORIGINAL, PROCESSED)))
            # One row, so the original's bytes are not read once a processed image exists.
            .order_by((JobImage.variant == PROCESSED).desc())
            .limit(1)
        )
        if not with_data:
            stmt = stmt.options(
                load_only(JobImage.id, JobImage.variant, JobImage.content_type, JobImage.size)
            )
        return self.session.scalars(stmt).first()


class CarDetectionRepository(_Repository):
    def save(self, job_id: uuid.UUID, image_id: int | None, detection: Detection | None) -> None:
        values: dict[str, Any] = {
            "job_id": job_id,
            "image_id": image_id,
            "top_left_x": None,
            "top_left_y": None,
            "width": None,
            "height": None,
            "conf": None,
            "label": 0,
            "created_at": utcnow(),
        }
        if detection is not None:
            values.update(detection.model_dump())
        self._upsert(
            CarDetectionRow,
            values,
            key=("job_id",),
            update=[name for name in values if name != "job_id"],
        )

    def for_job(self, job_id: uuid.UUID) -> CarDetectionRow | None:
        return self.session.scalar(select(CarDetectionRow).where(CarDetectionRow.job_id == job_id))
