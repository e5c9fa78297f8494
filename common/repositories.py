"""Repositories: the only code that queries tables. Each wraps one session; callers commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
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
        job = Job(
            pipeline_id=pipeline_id,
            status=JobStatus.QUEUED,
            payload={},
            steps=[
                JobStep(position=position, step_type=step_type, status=StepStatus.PENDING)
                for position, step_type in enumerate(step_types, start=1)
            ],
        )
        self.session.add(job)
        self.session.flush()
        return job

    def get(self, job_id: uuid.UUID, *, for_update: bool = False) -> Job | None:
        return self.session.get(Job, job_id, with_for_update=for_update)

    def set_step_types(self, job: Job, step_types: Sequence[str]) -> None:
        for step, step_type in zip(job.steps, step_types, strict=True):
            step.step_type = step_type

    def start_step(self, job: Job, position: int) -> JobStep:
        now = utcnow()
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.RUNNING
            job.started_at = now
        job.current_step = position
        step = job.steps[position - 1]
        step.status = StepStatus.RUNNING
        step.attempts += 1
        step.started_at = now
        step.error = None
        return step

    def finish_step(
        self, job: Job, position: int, duration_ms: float, payload: dict[str, Any]
    ) -> None:
        now = utcnow()
        step = job.steps[position - 1]
        step.status = StepStatus.SUCCEEDED
        step.finished_at = now
        step.duration_ms = duration_ms
        job.payload = payload
        if position == len(job.steps):
            job.status = JobStatus.SUCCEEDED
            job.finished_at = now

    def note_step_error(self, job: Job, position: int, error: str) -> None:
        """A failed attempt that will be retried: the step stays running, with the error shown."""
        job.steps[position - 1].error = error

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
        stmt = select(JobImage).where(
            JobImage.job_id == job_id, JobImage.variant.in_((ORIGINAL, PROCESSED))
        )
        if not with_data:
            stmt = stmt.options(
                load_only(JobImage.id, JobImage.variant, JobImage.content_type, JobImage.size)
            )
        images = {image.variant: image for image in self.session.scalars(stmt)}
        return images.get(PROCESSED) or images.get(ORIGINAL)


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
