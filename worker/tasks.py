"""Tasks: one task per step type runs a step of a job, and the adjacent steps after it that go
to the same queue; `pipeline.run_job` plans a job's chain.

A job is handed over as the chain of its tasks (common.queue.enqueue_job), so the planning task
only serves messages sent that way before, and jobs with no step left. Tasks pass the job id and
step positions (the first, and the last of a run); data and images go through the database.
"""

from __future__ import annotations

import enum
import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Task
from celery.exceptions import Ignore, Retry
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from common.db import autocommit_scope, session_scope
from common.logs import job_id_var, step_var
from common.models import JobStatus, StepStatus, utcnow
from common.pipeline import (
    BuiltPipeline,
    ConfigIssue,
    PipelineConfigError,
    Step,
    StepContext,
    StepError,
    StepManifest,
    TransientStepError,
    registry,
)
from common.queue import RUN_JOB_TASK, enqueue_job, step_task_name
from common.repositories import (
    ImageRepository,
    JobRepository,
    PipelineRepository,
    StoredImage,
)
from common.settings import get_settings
from worker import metrics, resources
from worker.celery_app import app
from worker.lease import StepLeasedError, keeper

log = logging.getLogger(__name__)

# The database is down or restarting: worth trying again, not a reason to fail the job.
DB_UNAVAILABLE = (OperationalError, InterfaceError)


class JobFailedError(Exception):
    """Raised once a job is marked failed: Celery then stops the chain and shows the failure."""


@contextmanager
def _job_logging(job_id: str) -> Iterator[uuid.UUID]:
    """Parse the task's job id and tag every log record of the task with it."""
    try:
        jid = uuid.UUID(str(job_id))
    except ValueError as exc:
        raise JobFailedError(f"task argument is not a job id: {job_id!r}") from exc
    token = job_id_var.set(str(jid))
    try:
        yield jid
    finally:
        job_id_var.reset(token)


def _pipeline_of(
    session: Session, pipeline_id: int, version_id: int, step_count: int
) -> BuiltPipeline:
    """The job's runnable pipeline, from the version it was submitted under (a later version
    does not change it); PipelineConfigError says why there is none."""

    def stored_config() -> dict[str, Any] | None:
        row = PipelineRepository(session).version_by_id(version_id)
        return None if row is None else row.config

    pipeline = resources.pipeline_for_version(version_id, stored_config)
    if len(pipeline.steps) != step_count:
        issue = ConfigIssue(None, None, "its steps changed after the job was submitted")
        raise PipelineConfigError([issue])
    return pipeline


@app.task(name=RUN_JOB_TASK, bind=True, throws=(JobFailedError,))
def run_job(self: Task, job_id: str) -> None:
    """Check the job's pipeline and send the chain of its steps still to run."""
    with _job_logging(job_id) as jid:
        try:
            remaining = _plan(jid)
        except DB_UNAVAILABLE as exc:
            raise _retry_after_outage(self, exc, "plan") from exc
        if remaining:
            enqueue_job(jid, remaining, app)
            log.info("chained %d step(s) from step %d", len(remaining), remaining[0][0])


def _plan(jid: uuid.UUID) -> list[tuple[int, str]]:
    """The (position, step type) of the job's steps still to run; none if nothing is."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None or JobStatus(job.status).terminal:
            log.info("job %s; nothing to run", "missing" if job is None else job.status)
            return []
        try:
            pipeline = _pipeline_of(
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


@dataclass(frozen=True)
class Claim:
    """A step this task now runs: `attempt` fences off older runs of the same step."""

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


@dataclass(frozen=True)
class Leased:
    """Another run holds the step: until when its lease lasts, None if it was claimed by a
    concurrent delivery just now (whose lease is not known yet)."""

    until: datetime | None


def _claim(jid: uuid.UUID, position: int, reads_image: bool) -> Claim | Skip | Leased:
    """Mark the step running and commit, so clients see progress before the work starts.

    `reads_image`: the step is expected to read the image's bytes, so the claim reads them.
    A Skip when there is nothing to do: the job is gone or ended, or the step was already done.
    Leased when another run holds the step's live lease. A step found running with its lease
    lapsed is taken over: its earlier run died, or it will find itself superseded.
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
        raise _fail_unstarted(jid, f"the job has no step {position}")
    if state.attempt is None:  # a live lease, or a concurrent claim, holds the step
        now = utcnow()
        return Leased(state.lease_expires_at if state.leased(now) else None)
    with session_scope() as session:
        try:
            pipeline = _pipeline_of(
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
    raise _fail(jid, failure, position, state.attempt, time.perf_counter())


class SupersededError(Exception):
    """A newer attempt of the step took over, or the job ended meanwhile."""


def _execute(jid: uuid.UUID, position: int, claim: Claim) -> None:
    """Run the step on the job's data and store what it returns, unless superseded.

    The session's transaction begins with its first statement: while a step that does not use
    the session runs (a call to the model server, say), no transaction is open.
    """
    started = time.perf_counter()
    step = claim.step
    reads_image = step.manifest.reads_image
    image = claim.image
    if reads_image and image is not None and not image.data:
        # The claim did not read the bytes (it expected another step): read them now.
        with autocommit_scope() as session:
            image = ImageRepository(session).current(jid, with_data=True)
    if image is None:
        raise StepError("the job's image is gone")
    data = claim.pipeline.datatype.model_validate(
        {
            **claim.payload,
            "image": image.data if reads_image else b"",
            "content_type": image.content_type,
        }
    )
    with session_scope() as session:
        ctx = StepContext(
            job_id=jid,
            session=session,
            http=resources.http_client(),
            settings=get_settings(),
            image_id=image.id,
            egress=resources.egress_client(),
        )
        result, output = step.execute(data, ctx)
        duration_ms = elapsed_ms(started)
        made_image = reads_image and result.image is not data.image
        recorded = JobRepository(session).finish_attempt(
            jid,
            position,
            claim.attempt,
            duration_ms,
            result.fields_without_image(),
            last=claim.last,
            image=(result.content_type, result.image) if made_image else None,
            output=step.manifest.output_json(output),
        )
        if not recorded:
            raise SupersededError
    log.info(
        "step %d (%s) done in %.1f ms%s",
        position,
        step.manifest.type_id,
        duration_ms,
        "; job succeeded" if claim.last else "",
    )


def _internal(exc: Exception) -> str:
    # What a client sees of a fault of ours: its kind, never its repr; the log has the rest.
    return f"internal error ({type(exc).__name__}); the worker's log has the details"


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading), to 0.1 ms: a step's
    duration as the job shows it; finer digits are noise."""
    return round((time.perf_counter() - started) * 1000, 1)


def _fail(
    jid: uuid.UUID, reason: str, position: int, attempt: int, started: float
) -> JobFailedError | Ignore:
    """Mark the job failed at this step; the caller raises what this returns."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None or not jobs.is_current_attempt(job, position, attempt):
            return Ignore()
        jobs.fail(job, reason, position, elapsed_ms(started))
    log.warning("job failed: %s", reason)
    return JobFailedError(reason)


def _fail_unstarted(jid: uuid.UUID, reason: str) -> JobFailedError | Ignore:
    """Mark the job failed before a step of it started; the caller raises what this returns."""
    with session_scope() as session:
        jobs = JobRepository(session)
        job = jobs.get(jid, for_update=True)
        if job is None or JobStatus(job.status).terminal:
            return Ignore()
        jobs.fail(job, reason)
    log.warning("job failed: %s", reason)
    return JobFailedError(reason)


def _backoff(base: float, retries: int, cap: float = 30.0) -> float:
    # Jitter spreads out the retries of many jobs that failed at once.
    return float(min(cap, base * 2**retries) * (0.5 + random.random()))


def _retry_after_outage(task: Task, exc: Exception, step: str) -> Exception:
    """The database could not be reached: try the task again later, without touching the job.

    If the retries run out, the job keeps its state and the recovery sweep re-enqueues it.
    """
    settings = get_settings()
    delay = _backoff(0.5, task.request.retries, cap=10.0)
    log.warning("database unavailable (%s); task retried in %.1f s", type(exc).__name__, delay)
    try:
        retry: Exception = task.retry(
            exc=exc, countdown=delay, max_retries=settings.db_outage_max_retries
        )
    except Retry:
        metrics.retried(step, exc)  # sent again; not when the retries ran out
        raise
    return retry


def run_steps(
    task: Task, jid: uuid.UUID, first: int, last: int, first_reads_image: bool = False
) -> None:
    """Run the job's steps `first` to `last` in turn (a run of adjacent steps on one queue).

    A step found done (the task is a retry, or was delivered again) is passed over; the run
    stops early when the job is gone or ended, or with its last step.
    """
    # Whether the next step reads the image's bytes, so that its claim reads them: the task's
    # own step type tells for the first; the job's pipeline, once a claim has read it, for the
    # others.
    reads_image = first_reads_image
    for position in range(first, last + 1):
        claim = _start(task, jid, position, reads_image)
        if claim is Skip.DONE:
            reads_image = False
            continue
        if claim is Skip.STOP:
            return
        if isinstance(claim, Leased):
            raise _defer(task, position, claim)
        following = claim.pipeline.steps[position : position + 1]
        reads_image = bool(following) and following[0].manifest.reads_image
        token = step_var.set((position, claim.step.manifest.type_id))
        try:
            with keeper.hold(jid, position, claim.attempt):
                _run_claimed(task, jid, position, claim)
        finally:
            step_var.reset(token)
        if claim.last:
            return


def _defer(task: Task, position: int, leased: Leased) -> Exception:
    """Another run holds the step: this delivery is sent again for when the lease would lapse
    (the holder renews it while it runs; if it died, the step is claimed then), and the
    message in hand is acknowledged. The chain after the step goes with it."""
    if leased.until is None:
        delay = random.uniform(0.5, 1.0)  # claimed just now: read its lease shortly
    else:
        delay = max(0.0, (leased.until - utcnow()).total_seconds()) + random.uniform(0.1, 0.5)
    log.info("step %d is held by another run; this delivery tries again in %.1f s", position, delay)
    step = metrics.step_of(task.name) or "plan"
    exc = StepLeasedError(f"step {position} is held by another run")
    try:
        retry: Exception = task.retry(exc=exc, countdown=delay, max_retries=None)
    except Retry:
        metrics.retried(step, exc)
        raise
    return retry


def _start(task: Task, jid: uuid.UUID, position: int, reads_image: bool) -> Claim | Skip | Leased:
    try:
        return _claim(jid, position, reads_image)
    except DB_UNAVAILABLE as exc:
        # The step's type is known once claimed: until then, the task's.
        raise _retry_after_outage(task, exc, metrics.step_of(task.name) or "plan") from exc
    except JobFailedError:
        raise
    except Exception as exc:
        # A fault of this code, not of the job: the job fails, saying so, rather than waiting.
        log.exception("step %d could not start", position)
        raise _fail_unstarted(jid, f"step {position}: {_internal(exc)}") from exc


def _run_claimed(task: Task, jid: uuid.UUID, position: int, claim: Claim) -> None:
    """Run a claimed step, timed for the metrics by outcome."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        _run_step(task, jid, position, claim)
        outcome = "succeeded"
    except Retry:
        outcome = "retried"
        raise
    except Ignore:
        outcome = "superseded"
        raise
    finally:
        metrics.step_finished(claim.step.manifest.type_id, outcome, time.perf_counter() - started)


def _run_step(task: Task, jid: uuid.UUID, position: int, claim: Claim) -> None:
    settings = get_settings()
    step, attempt = claim.step, claim.attempt
    label = f"step {position} ({step.manifest.type_id})"
    started = time.perf_counter()
    try:
        _execute(jid, position, claim)
    except SupersededError:
        log.info("%s: attempt %d superseded; its result is dropped", label, attempt)
        raise Ignore() from None
    except DB_UNAVAILABLE as exc:
        raise _retry_after_outage(task, exc, step.manifest.type_id) from exc
    except TransientStepError as exc:
        if attempt > settings.step_max_retries:
            reason = f"{label}: {exc} (gave up after {attempt} attempts)"
            raise _fail(jid, reason, position, attempt, started) from exc
        delay = _backoff(settings.step_retry_backoff_s, attempt - 1)
        with session_scope() as session:
            jobs = JobRepository(session)
            job = jobs.get(jid, for_update=True)
            if job is not None and jobs.is_current_attempt(job, position, attempt):
                jobs.note_step_error(job, position, f"{exc} (retrying in {delay:.1f} s)")
        log.warning("%s: %s; attempt %d in %.1f s", label, exc, attempt + 1, delay)
        metrics.retried(step.manifest.type_id, exc)
        raise task.retry(exc=exc, countdown=delay, max_retries=None) from exc
    except StepError as exc:
        raise _fail(jid, f"{label}: {exc}", position, attempt, started) from exc
    except Exception as exc:
        log.exception("%s crashed", label)
        reason = f"{label}: {_internal(exc)}"
        raise _fail(jid, reason, position, attempt, started) from exc


def _register_step_task(manifest: StepManifest) -> None:
    @app.task(name=step_task_name(manifest.type_id), bind=True, throws=(JobFailedError,))
    def step_task(self: Task, job_id: str, position: int, last: int | None = None) -> None:
        """Run step `position` of the job, and the steps after it up to `last` if given."""
        with _job_logging(job_id) as jid:
            # Messages are JSON from anyone who can reach the broker: check what they carry.
            if type(position) is not int:
                raise JobFailedError(f"task argument is not a step position: {position!r}")
            if last is not None and (type(last) is not int or last < position):
                raise JobFailedError(f"task argument is not a last step position: {last!r}")
            run_steps(self, jid, position, position if last is None else last, manifest.reads_image)


for _step in registry().steps:
    _register_step_task(_step.manifest)
