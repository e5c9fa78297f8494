"""What the API answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.catalogue import output_in_order
from common.models import (
    CarDetectionRow,
    Job,
    JobStatus,
    Pipeline,
    PipelineVersion,
    StepStatus,
)
from common.pipeline.datatypes import Detection


class JobAccepted(BaseModel):
    job_id: uuid.UUID
    status: Literal["queued"] = "queued"


class StepView(BaseModel):
    position: int
    type: str
    status: str
    attempts: int
    duration_ms: float | None
    error: str | None
    output: dict[str, Any] | None = Field(
        description="What the step reported once it succeeded, as the `output` JSON Schema of "
        "its type in GET /steps says; null until then, and for a step that reports nothing."
    )


class JobView(BaseModel):
    job_id: uuid.UUID
    pipeline_id: int
    pipeline_version: int = Field(description="The pipeline version the job runs (from 1).")
    status: JobStatus
    message: Literal["success"] | None = Field(description='"success" once the job succeeded.')
    result: Detection | None = Field(description="The detection, or null when there is no car.")
    error: str | None
    current_step: int | None = Field(description="Position (from 1) of the step the job is at.")
    steps: list[StepView]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def build(cls, job: Job, detection: CarDetectionRow | None) -> JobView:
        result = None
        if detection is not None and detection.label != 0:
            result = Detection.model_validate(detection, from_attributes=True)
        return cls(
            job_id=job.id,
            pipeline_id=job.pipeline_id,
            pipeline_version=job.pipeline_version.version,
            status=JobStatus(job.status),
            message="success" if job.status == JobStatus.SUCCEEDED else None,
            result=result,
            error=job.error,
            current_step=job.current_step,
            steps=[
                StepView(
                    position=s.position,
                    type=s.step_type,
                    status=s.status,
                    attempts=s.attempts,
                    duration_ms=s.duration_ms,
                    error=s.error,
                    output=output_in_order(s.step_type, s.output)
                    if s.status == StepStatus.SUCCEEDED
                    else None,
                )
                for s in job.steps
            ],
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobPage(BaseModel):
    items: list[JobView] = Field(description="Newest first; ties in created_at by job id.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class BatchAccepted(BaseModel):
    jobs: list[JobAccepted] = Field(description="One job per image, in upload order.")


class PipelineView(BaseModel):
    id: int
    name: str
    description: str
    config: dict[str, Any] = Field(description="The current version's config.")
    version: int = Field(description="Number of the current version (from 1).")
    created_at: datetime
    archived_at: datetime | None = Field(
        description="When the pipeline was archived (it then takes no new jobs); null if not."
    )

    @classmethod
    def build(cls, pipeline: Pipeline) -> PipelineView:
        return cls(
            id=pipeline.id,
            name=pipeline.name,
            description=pipeline.description,
            config=pipeline.config,
            version=pipeline.current_version,
            created_at=pipeline.created_at,
            archived_at=pipeline.archived_at,
        )


class PipelineVersionView(BaseModel):
    version: int
    config: dict[str, Any]
    created_at: datetime

    @classmethod
    def build(cls, version: PipelineVersion) -> PipelineVersionView:
        return cls.model_validate(version, from_attributes=True)


class CompatSuccess(BaseModel):
    message: Literal["success"] = "success"
    job_id: uuid.UUID


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    broker: str
