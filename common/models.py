"""Tables. Alembic owns the schema; these classes describe it to the code."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSONB()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # The current version's config and number, kept here so that reading a pipeline is one row;
    # every version, the current one included, is a row of pipeline_versions.
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    current_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set once the pipeline is archived: it takes no new jobs; its history stays readable.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PipelineVersion(Base):
    """One config a pipeline has had; never changed once written, so jobs can pin it."""

    __tablename__ = "pipeline_versions"
    __table_args__ = (UniqueConstraint("pipeline_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    # Numbered from 1 within the pipeline.
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')", name="status_known"
        ),
        # The recovery sweep looks for unfinished jobs that have not moved for a while.
        Index("ix_jobs_status_updated_at", "status", "updated_at"),
        # GET /jobs pages newest first, ties broken by id, over all jobs or one pipeline's.
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_pipeline_id_created_at_id", "pipeline_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    # The pipeline version current when the job was submitted: the one it runs, retries included.
    pipeline_version_id: Mapped[int] = mapped_column(ForeignKey("pipeline_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    # Position (from 1) of the step the job is at or last ran; None before the first step.
    current_step: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # The pipeline's data object between steps, without its image bytes (those are in job_images).
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Moves whenever the job or one of its steps changes state.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    # The last hand-over to the broker (None until one succeeded) and how many there were.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enqueue_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    steps: Mapped[list[JobStep]] = relationship(
        order_by="JobStep.position", cascade="all, delete-orphan", lazy="selectin"
    )
    # Loaded only when asked for (the API's views); the worker reads the version by id.
    pipeline_version: Mapped[PipelineVersion] = relationship(lazy="select")

    def steps_to_run(self) -> list[tuple[int, str]]:
        """(position, step type) of the steps that have not succeeded, in order."""
        return [(s.position, s.step_type) for s in self.steps if s.status != StepStatus.SUCCEEDED]


class UnfinishedJobCount(Base):
    """One slot of the count of queued and running jobs; their sum is the count. Triggers on
    `jobs` keep it (migration 0007), each transaction adding to the slot of its server process,
    so that admission reads 64 rows instead of counting the backlog."""

    __tablename__ = "unfinished_job_counts"
    __table_args__ = {"postgresql_with": {"fillfactor": 20}}

    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    jobs: Mapped[int] = mapped_column(BigInteger)


class ExpiredJobCount(Base):
    """Finished jobs the retention sweep deleted (JOB_RETENTION_DAYS), by pipeline and outcome:
    added to the jobs still stored, they keep `pipeline_jobs_finished` a counter that never
    goes down (migration 0008)."""

    __tablename__ = "expired_job_counts"

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    jobs: Mapped[int] = mapped_column(BigInteger)


class JobStep(Base):
    __tablename__ = "job_steps"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    step_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # While the step runs, its claim holds it until then (renewed by the running worker); a
    # delivery of its message that finds the lease live defers (worker/lease.py).
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the step reported once it succeeded, as its manifest's output model declares (JSON);
    # None before, and for a step that reports nothing.
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class JobImage(Base):
    __tablename__ = "job_images"
    __table_args__ = (UniqueConstraint("job_id", "variant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CarDetectionRow(Base):
    __tablename__ = "car_detections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    # The image the model saw (the job's processed image, or the original if nothing changed it).
    image_id: Mapped[int | None] = mapped_column(ForeignKey("job_images.id", ondelete="SET NULL"))
    top_left_x: Mapped[int | None] = mapped_column(Integer)
    top_left_y: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    conf: Mapped[float | None] = mapped_column(Float)
    label: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
