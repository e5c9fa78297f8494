"""One class runs a job's steps in a task: for each step, claim it, run it, record its result.

What an exception means is decided in one place, OUTCOMES: the first row whose exception
class matches gives the outcome. A database outage is left to Celery's own retry options on the
task (`autoretry_for`, `retry_backoff`, `retry_jitter`, `max_retries`: worker/tasks.py); a
transient step error and a step held by another run's lease are sent again by the runner, since
their delay depends on the step (its attempt number, the lease's end). Retries are counted in
the metrics by Celery's `task_retry` signal (worker/celery_app.py), whatever sent them.
"""

from __future__ import annotations

import enum
import logging
import random
import time
import uuid

from celery import Task
from celery.exceptions import Ignore, Retry
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.exc import InterfaceError, OperationalError

from common.db import autocommit_scope, session_scope, statements_commit_themselves
from common.pipeline import StepContext, StepError, TransientStepError
from common.repositories import ImageRepository, JobRepository
from common.settings import get_settings
from worker import logcontext, metrics, resources
from worker.claim import Claim, Skip, claim
from worker.lease import RETRY_COUNTDOWN_CAP_S, StepLeasedError, keeper
from worker.records import (
    JobFailedError,
    SupersededError,
    elapsed_ms,
    fail,
    fail_unstarted,
    internal,
    note_retry,
)

log = logging.getLogger(__name__)

# The database is down or restarting: worth trying the task again, not a reason to fail the job.
DB_UNAVAILABLE = (OperationalError, InterfaceError)
# Already decided: a job marked failed, a result dropped, a task sent again.
DECIDED = (JobFailedError, Ignore, Retry)


class Outcome(enum.Enum):
    """What becomes of a step (and its job) when running it raised."""

    SUPERSEDED = "superseded"  # a newer attempt holds the step: drop this run's result
    LEASED = "leased"  # another run holds the step's lease: come back when it would lapse
    OUTAGE = "outage"  # the database is unreachable: Celery retries the task with backoff
    RETRY = "retry"  # transient: try again with backoff, fail after STEP_MAX_RETRIES
    FAIL = "fail"  # the step's own error: the job fails with its message
    CRASH = "crash"  # a fault of this code: the job fails, saying only the error's kind


OUTCOMES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], Outcome], ...] = (
    (SupersededError, Outcome.SUPERSEDED),
    (StepLeasedError, Outcome.LEASED),
    (DB_UNAVAILABLE, Outcome.OUTAGE),
    (TransientStepError, Outcome.RETRY),
    (StepError, Outcome.FAIL),
    (Exception, Outcome.CRASH),
)


def outcome_of(exc: Exception) -> Outcome:
    """The first row of OUTCOMES that `exc` is an instance of."""
    return next(outcome for kind, outcome in OUTCOMES if isinstance(exc, kind))


class StepRun:
    """Runs steps `first` to `last` (positions from 1) of job `jid` in `task`: a run of adjacent
    steps on one queue. A step found done (the task is a retry, or was delivered again) is
    passed over; the run stops early when the job is gone or ended, or with its last step.
    Raises Retry, Ignore, JobFailedError, or a database error for Celery to retry."""

    def __init__(self, task: Task, jid: uuid.UUID, first: int, last: int) -> None:
        self.task, self.jid, self.first, self.last = task, jid, first, last

    def run(self, first_reads_image: bool) -> None:
        """`first_reads_image`: the first step reads the image's bytes, so its claim reads them
        (the job's pipeline, once a claim has read it, tells for the others).

        Log records are tagged with the step being run; once the run ends well, with the task's
        own step again (Celery's "succeeded" line). A retry leaves the step it was sent for, by
        which the `task_retry` signal counts it."""
        self._run(first_reads_image)
        own = metrics.step_of(self.task.name)
        if own is not None:
            logcontext.at_step(self.first, own)

    def _run(self, first_reads_image: bool) -> None:
        reads_image = first_reads_image
        for position in range(self.first, self.last + 1):
            started = time.perf_counter()
            try:
                claimed = claim(self.jid, position, reads_image)
            except DECIDED:
                raise
            except Exception as exc:
                raise self._settle(exc, position, None, started)[1] from exc
            if claimed is Skip.DONE:
                reads_image = False
                continue
            if claimed is Skip.STOP:
                return
            following = claimed.pipeline.steps[position : position + 1]
            reads_image = bool(following) and following[0].manifest.reads_image
            logcontext.at_step(position, claimed.step.manifest.type_id)
            with keeper.hold(self.jid, position, claimed.attempt):
                self._run_claimed(position, claimed)
            if claimed.last:
                return

    def _run_claimed(self, position: int, claimed: Claim) -> None:
        """Run a claimed step and record its result; timed for the metrics by outcome."""
        started = time.perf_counter()
        label = "failed"
        try:
            record(self.jid, position, claimed)
            label = "succeeded"
        except DECIDED:
            raise
        except Exception as exc:
            label, error = self._settle(exc, position, claimed, started)
            raise error from exc
        finally:
            type_id = claimed.step.manifest.type_id
            metrics.step_finished(type_id, label, time.perf_counter() - started)

    def _settle(
        self, exc: Exception, position: int, claimed: Claim | None, started: float
    ) -> tuple[str, BaseException]:
        """What becomes of step `position` that raised `exc` (before its claim, if `claimed` is
        None), by OUTCOMES: the metrics outcome, and what the task raises now."""
        outcome = outcome_of(exc)
        if outcome is Outcome.OUTAGE:
            return "retried", exc  # for Celery's autoretry_for
        if outcome is Outcome.LEASED:
            assert isinstance(exc, StepLeasedError)
            return "retried", self._defer(exc)
        if claimed is None:
            # A fault of this code, not of the job: the job fails, saying so, rather than waiting.
            log.exception("step %d could not start", position)
            return "failed", fail_unstarted(self.jid, f"step {position}: {internal(exc)}")
        label = f"step {position} ({claimed.step.manifest.type_id})"
        attempt = claimed.attempt
        if outcome is Outcome.SUPERSEDED:
            log.info("%s: attempt %d superseded; its result is dropped", label, attempt)
            return "superseded", Ignore()
        if outcome is Outcome.RETRY and attempt <= get_settings().step_max_retries:
            return "retried", self._retry(exc, position, attempt, label)
        if outcome is Outcome.RETRY:
            reason = f"{label}: {exc} (gave up after {attempt} attempts)"
        elif outcome is Outcome.FAIL:
            reason = f"{label}: {exc}"
        else:
            log.exception("%s crashed", label)
            reason = f"{label}: {internal(exc)}"
        return "failed", fail(self.jid, reason, position, attempt, started)

    def _retry(self, exc: Exception, position: int, attempt: int, label: str) -> Retry:
        """Send the task again for another attempt of the step, after a backoff that doubles
        per attempt (STEP_RETRY_BACKOFF_S, at most 30 s) with jitter, which spreads out the
        retries of many jobs that failed at once."""
        base = get_settings().step_retry_backoff_s
        delay = get_exponential_backoff_interval(
            base, attempt - 1, RETRY_COUNTDOWN_CAP_S
        ) * random.uniform(0.5, 1.5)
        note_retry(self.jid, position, attempt, f"{exc} (retrying in {delay:.1f} s)")
        log.warning("%s: %s; attempt %d in %.1f s", label, exc, attempt + 1, delay)
        return self.task.retry(exc=exc, countdown=delay, max_retries=None, throw=False)

    def _defer(self, leased: StepLeasedError) -> Retry:
        """Another run holds the step: this delivery is sent again for when the lease would
        lapse (the holder renews it while it runs; if it died, the step is claimed then), and
        the message in hand is acknowledged. The chain after the step goes with it."""
        if leased.lapses_in_s is None:
            delay = random.uniform(0.5, 1.0)  # claimed just now: read its lease shortly
        else:
            delay = max(0.0, leased.lapses_in_s) + random.uniform(0.1, 0.5)
        log.info("%s; this delivery tries again in %.1f s", leased, delay)
        return self.task.retry(exc=leased, countdown=delay, max_retries=None, throw=False)


def record(jid: uuid.UUID, position: int, claimed: Claim) -> None:
    """Run the claimed step on the job's data and store what it returns. Raises
    SupersededError if a newer attempt took the step meanwhile, StepError from the step.

    The session's transaction begins with its first statement: while a step that does not use
    the session runs (a call to the model server, say), no transaction is open. A step that
    wrote nothing has its result stored in one statement that commits itself; one that wrote
    rows has them committed with its result, in one transaction.
    """
    started = time.perf_counter()
    step = claimed.step
    reads_image = step.manifest.reads_image
    image = claimed.image
    if reads_image and image is not None and not image.data:
        # The claim did not read the bytes (it expected another step): read them now.
        with autocommit_scope() as session:
            image = ImageRepository(session).current(jid, with_data=True)
    if image is None:
        raise StepError("the job's image is gone")
    data = claimed.pipeline.datatype.model_validate(
        {
            **claimed.payload,
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
        if not session.in_transaction():
            # The step wrote nothing: its result is one statement, which commits itself,
            # saving the BEGIN and COMMIT round trips.
            statements_commit_themselves(session)
        duration_ms = elapsed_ms(started)
        made_image = reads_image and result.image is not data.image
        recorded = JobRepository(session).finish_attempt(
            jid,
            position,
            claimed.attempt,
            duration_ms,
            result.fields_without_image(),
            last=claimed.last,
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
        "; job succeeded" if claimed.last else "",
    )
