"""Tasks: `pipeline.run_job` plans a job's chain; one task per step type runs one step of a job.

Tasks pass the job id and a step position; data and images go through the database.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Any

from celery import Task, chain

from common.db import session_scope
from common.logs import job_id_var
from common.models import JobStatus, StepStatus
from common.pipeline import PipelineConfigError, Step, StepContext, StepError, TransientStepError
from common.queue import RUN_JOB_TASK, step_task_name
from common.repositories import PROCESSED, ImageRepository, JobRepository, PipelineRepository
from common.settings import get_settings
from worker import resources
from worker.celery_app import app

log = logging.getLogger(__name__)


class JobFailedError(Exception):
    """Raised once a job is marked failed: Celery then stops the chain and shows the failure."""


def _parse_job_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(job_id))
    except ValueError as exc:
        raise JobFailedError(f"task argument is not a job id: {job_id!r}") from exc


def _step_label(position: int, step: Step[Any, Any]) -> str:
    return f"step {position} ({step.manifest.type_id})"


def _fail_job(
    job_id: uuid.UUID, reason: str, position: int | None = None, duration_ms: float | None = None
) -> None:
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(job_id, for_update=True)
        if job is not None and not JobStatus(job.status).terminal:
            jobs.fail(job, reason, position, duration_ms)
    log.warning("job failed: %s", reason)


@app.task(name=RUN_JOB_TASK, throws=(JobFailedError,))
def run_job(job_id: str) -> None:
    """Rebuild the job's pipeline from its stored config and chain its remaining steps."""
    jid = _parse_job_id(job_id)
    token = job_id_var.set(str(jid))
    try:
        with session_scope() as session:
            job = JobRepository(session).get(jid)
            if job is None:
                log.warning("no such job; nothing to run")
                return
            if JobStatus(job.status).terminal:
                return
            pipeline_row = PipelineRepository(session).get(job.pipeline_id)
            config = pipeline_row.config if pipeline_row is not None else None
            remaining = [s.position for s in job.steps if s.status != StepStatus.SUCCEEDED]
        try:
            if config is None:
                raise PipelineConfigError([])
            pipeline = resources.pipeline_for(config)
        except PipelineConfigError as exc:
            reason = f"pipeline {job.pipeline_id} cannot run: {exc or 'it no longer exists'}"
            _fail_job(jid, reason)
            raise JobFailedError(reason) from exc
        if len(pipeline.steps) != len(job.steps):
            reason = "the pipeline's steps changed after the job was submitted"
            _fail_job(jid, reason)
            raise JobFailedError(reason)
        with session_scope() as session:
            jobs = JobRepository(session)
            locked = jobs.get(jid, for_update=True)
            assert locked is not None
            jobs.set_step_types(locked, pipeline.step_types)
        steps = [
            app.signature(
                step_task_name(pipeline.steps[position - 1].manifest.type_id),
                args=(str(jid), position),
                immutable=True,
            )
            for position in remaining
        ]
        if steps:
            chain(*steps).apply_async()
        log.info("chained %d step(s) from step %s", len(steps), remaining[:1])
    finally:
        job_id_var.reset(token)


def _retry_delay(retries: int) -> float:
    base = get_settings().step_retry_backoff_s * float(2**retries)
    return base * (0.5 + random.random())  # jitter spreads out retries of many jobs at once


def run_step(task: Task, job_id: str, position: int) -> None:
    jid = _parse_job_id(job_id)
    settings = get_settings()
    # Claim: mark the step running and commit, so clients see progress before the work starts.
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None:
            log.warning("no such job; step %d skipped", position)
            return
        if JobStatus(job.status).terminal:
            log.info("job already %s; step %d skipped", job.status, position)
            return
        if not 1 <= position <= len(job.steps):
            raise JobFailedError(f"job has no step {position}")
        if job.steps[position - 1].status == StepStatus.SUCCEEDED:
            log.info("step %d already done; delivered again", position)
            return
        pipeline_row = PipelineRepository(session).get(job.pipeline_id)
        assert pipeline_row is not None
        step = resources.pipeline_for(pipeline_row.config).steps[position - 1]
        datatype = resources.pipeline_for(pipeline_row.config).datatype
        jobs.start_step(job, position)
        label = _step_label(position, step)

    started = time.perf_counter()
    try:
        with session_scope() as session:
            jobs = JobRepository(session)
            images = ImageRepository(session)
            job = jobs.get(jid)
            image = images.current(jid, with_data=True)
            if job is None or image is None:
                raise StepError("the job or its image is gone")
            data = datatype.model_validate(
                {**job.payload, "image": image.data, "content_type": image.content_type}
            )
            ctx = StepContext(
                job_id=jid, session=session, http=resources.http_client(), settings=settings
            )
            result = step.run(data, ctx)
            duration_ms = (time.perf_counter() - started) * 1000
            if result.image is not data.image:
                images.put(jid, PROCESSED, result.content_type, result.image)
            jobs.finish_step(job, position, duration_ms, result.fields_without_image())
            done = job.status == JobStatus.SUCCEEDED
        log.info("%s done in %.1f ms%s", label, duration_ms, "; job succeeded" if done else "")
    except TransientStepError as exc:
        retries = task.request.retries
        if retries < settings.step_max_retries:
            delay = _retry_delay(retries)
            with session_scope() as session:
                jobs = JobRepository(session)
                job = jobs.get(jid, for_update=True)
                if job is not None:
                    jobs.note_step_error(job, position, f"{exc} (retrying in {delay:.1f} s)")
            log.warning("%s: %s; retry %d in %.1f s", label, exc, retries + 1, delay)
            raise task.retry(countdown=delay, max_retries=settings.step_max_retries) from exc
        reason = f"{label}: {exc} (gave up after {retries + 1} attempts)"
        _fail_job(jid, reason, position, (time.perf_counter() - started) * 1000)
        raise JobFailedError(reason) from exc
    except StepError as exc:
        reason = f"{label}: {exc}"
        _fail_job(jid, reason, position, (time.perf_counter() - started) * 1000)
        raise JobFailedError(reason) from exc
    except Exception as exc:
        log.exception("%s crashed", label)
        reason = f"{label}: internal error: {exc!r}"
        _fail_job(jid, reason, position, (time.perf_counter() - started) * 1000)
        raise JobFailedError(reason) from exc


def _register_step_task(type_id: str) -> None:
    @app.task(name=step_task_name(type_id), bind=True, throws=(JobFailedError,))
    def step_task(self: Task, job_id: str, position: int) -> None:
        token = job_id_var.set(str(job_id))
        try:
            run_step(self, job_id, position)
        finally:
            job_id_var.reset(token)


for _step in resources.registry().steps:
    _register_step_task(_step.manifest.type_id)
