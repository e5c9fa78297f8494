"""Claiming a step of a job (and planning a job): what a run may do before any step runs.

A claim marks the step running under a lease (worker/lease.py) and a new attempt number, which
fences off older runs of the same step; it commits at once, so clients see progress before the
work starts.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from common.db import autocommit_scope, session_scope
from common.models import JobStatus, StepStatus
from common.pipeline import BuiltPipeline, ConfigIssue, PipelineConfigError, Step
from common.repositories import JobRepository, PipelineRepository, StoredImage
from common.settings import get_settings
from worker import resources
from worker.lease import StepLeasedError
from worker.records import JobFailedError, fail, fail_unstarted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A step this run now holds: `attempt` fences off older runs of the same step."""

    step: Step[Any, Any]
    pipeline: BuiltPipeline
    attempt: int
    payload: dict[str, Any]
    last: bool
    image: StoredImage | None  # the image the step works on, its bytes read if the step reads it


class Skip(enum.Enum):
    """Why a step was not claimed, and so whether a run of steps goes on past it."""

    DONE = "the step had succeeded"  # the task is a retry, or was delivered again: go on
    STOP = "the job is gone or ended"


def pipeline_of(
    session: Session, pipeline_id: int, version_id: int, step_count: int
) -> BuiltPipeline:
    """The job's runnable pipeline, from the version it was submitted under (a later version
    does not change it). Raises PipelineConfigError saying why there is none."""

    def stored_config() -> dict[str, Any] | None:
        row = PipelineRepository(session).version_by_id(version_id)
        return None if row is None else row.config

    pipeline = resources.pipeline_for_version(version_id, stored_config)
    if len(pipeline.steps) != step_count:
        issue = ConfigIssue(None, None, "its steps changed after the job was submitted")
        raise PipelineConfigError([issue])
    return pipeline


def plan(jid: uuid.UUID) -> list[tuple[int, str]]:
    """The (position from 1, step type) of the job's steps still to run; none if nothing is.
    Raises JobFailedError (the job marked failed) when its pipeline cannot run."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None or JobStatus(job.status).terminal:
            log.info("job %s; nothing to run", "missing" if job is None else job.status)
            return []
        try:
            pipeline = pipeline_of(
                session, job.pipeline_id, job.pipeline_version_id, len(job.steps)
            )
        except PipelineConfigError as exc:
            failure = f"pipeline {job.pipeline_id} cannot run: {exc}"
            jobs.fail(job, failure)
        else:
            jobs.set_step_types(job, pipeline.step_types)
            remaining = job.steps_to_run()
            if not remaining:
                jobs.succeed(job)
                log.info("every step had succeeded; job succeeded")
            return remaining
    log.warning("job failed: %s", failure)
    raise JobFailedError(failure)


def claim(jid: uuid.UUID, position: int, reads_image: bool) -> Claim | Skip:
    """Mark step `position` (from 1) running and commit.

    `reads_image`: the step is expected to read the image's bytes, so the claim reads them.
    A Skip when there is nothing to do: the job is gone or ended, or the step was already done.
    A step found running with its lease lapsed is taken over: its earlier run died, or it will
    find itself superseded. Raises StepLeasedError when another run holds the step's live
    lease; JobFailedError (or Ignore) when the job has no such step or its pipeline cannot run.
    """
    lease_s = get_settings().step_lease_s
    with autocommit_scope() as session:
        state = JobRepository(session).claim_step(
            jid, position, lease_s=lease_s, with_data=reads_image
        )
    if state is None or JobStatus(state.status).terminal:
        log.info("job %s; step %d skipped", "missing" if state is None else state.status, position)
        return Skip.STOP
    if state.step_status == StepStatus.SUCCEEDED:
        log.info("step %d already done; delivered again", position)
        return Skip.DONE
    if state.step_status is None:
        raise fail_unstarted(jid, f"the job has no step {position}")
    if state.attempt is None:  # a live lease, or a concurrent claim, holds the step
        lapses_in_s = None
        if state.db_now is not None and state.leased(state.db_now):
            assert state.lease_expires_at is not None
            lapses_in_s = (state.lease_expires_at - state.db_now).total_seconds()
        raise StepLeasedError(position, lapses_in_s)
    with session_scope() as session:
        try:
            pipeline = pipeline_of(
                session, state.pipeline_id, state.pipeline_version_id, state.step_count
            )
        except PipelineConfigError as exc:
            failure = f"pipeline {state.pipeline_id} cannot run: {exc}"
        else:
            return Claim(
                step=pipeline.steps[position - 1],
                pipeline=pipeline,
                attempt=state.attempt,
                payload=state.payload,
                last=position == state.step_count,
                image=state.image,
            )
    raise fail(jid, failure, position, state.attempt, time.perf_counter())
