"""The recovery sweep, run in-process against the real database and Redis, on a queue of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from celery import Celery

from common.db import session_scope
from common.models import JobStatus, StepStatus, utcnow
from common.queue import make_celery, queue_depth
from common.repositories import JobRepository
from common.settings import get_settings
from tests.conftest import TEST_ENV
from tests.rows import add_job
from worker.recovery import sweep

pytestmark = pytest.mark.system

STEPS = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]


# Stale for these tests' sweeps, but not for the session worker's (60 s grace), which must
# leave the rows made here alone.
GRACE_S = 5
STALE_S = 20

made: list[uuid.UUID] = []


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    """A Celery client on a fresh queue no worker consumes."""
    queue = f"recovery-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("QUEUE_NAME", queue)
    monkeypatch.setenv("RECOVERY_GRACE_S", str(GRACE_S))
    monkeypatch.setenv("RECOVERY_MAX_ENQUEUES", "3")
    get_settings.cache_clear()
    yield make_celery("recovery-test")
    redis.Redis.from_url(TEST_ENV["BROKER_URL"]).delete(queue, f"_kombu.binding.{queue}")
    get_settings.cache_clear()
    # End the rows made here, so that no later sweep picks them up.
    with session_scope() as session:
        jobs = JobRepository(session)
        for job_id in made:
            job = jobs.get(job_id)
            if job is not None and not JobStatus(job.status).terminal:
                jobs.fail(job, "made by a recovery test")
    made.clear()


def make_job(*, status: str, idle_s: float, enqueued: bool = True, count: int = 1) -> uuid.UUID:
    with session_scope() as session:
        job = add_job(session, 1, STEPS)
        job.status = status
        job.updated_at = utcnow() - timedelta(seconds=idle_s)
        job.enqueue_count = count
        if not enqueued:
            job.enqueued_at = None
        made.append(job.id)
        return job.id


def load(job_id: uuid.UUID) -> tuple[str, int, str | None]:
    with session_scope() as session:
        job = JobRepository(session).get(job_id)
        assert job is not None
        return job.status, job.enqueue_count, job.error


def test_queue_depth_counts_waiting_messages(app: Celery) -> None:
    assert queue_depth(app) == 0  # Redis has no list for an empty queue

    for _ in range(3):
        app.send_task("pipeline.run_job", args=[str(uuid.uuid4())])

    assert queue_depth(app) == 3


def test_a_job_the_broker_never_took_is_handed_over_at_once(app: Celery) -> None:
    job_id = make_job(status=JobStatus.QUEUED, idle_s=0, enqueued=False, count=0)

    result = sweep(app)

    assert job_id in result.enqueued
    assert load(job_id)[:2] == ("queued", 1)
    assert queue_depth(app) == 1


def test_a_job_that_stopped_moving_is_handed_over_again_when_the_queue_is_empty(
    app: Celery,
) -> None:
    stale = make_job(status=JobStatus.RUNNING, idle_s=STALE_S)
    fresh = make_job(status=JobStatus.RUNNING, idle_s=1)

    result = sweep(app)

    assert stale in result.enqueued
    assert fresh not in result.enqueued
    assert load(stale)[:2] == ("running", 2)
    assert load(fresh)[:2] == ("running", 1)


def test_a_stalled_job_is_left_alone_while_messages_wait_in_the_queue(app: Celery) -> None:
    app.send_task("pipeline.run_job", args=[str(uuid.uuid4())])  # a backlog
    stale = make_job(status=JobStatus.QUEUED, idle_s=STALE_S)

    result = sweep(app)

    assert stale not in result.enqueued
    assert load(stale)[:2] == ("queued", 1)


def test_a_job_handed_over_too_often_fails_with_the_reason(app: Celery) -> None:
    looping = make_job(status=JobStatus.RUNNING, idle_s=STALE_S, count=3)

    result = sweep(app)

    assert looping in result.failed
    assert looping not in result.enqueued
    status, _, error = load(looping)
    assert status == "failed"
    assert error == "handed to the workers 3 times without finishing; gave up"


def hold_lease(job_id: uuid.UUID, position: int, for_s: float) -> None:
    with session_scope() as session:
        job = JobRepository(session).get(job_id)
        assert job is not None
        step = job.steps[position - 1]
        step.status = StepStatus.RUNNING
        step.attempts = 1
        step.lease_expires_at = utcnow() + timedelta(seconds=for_s)


def test_a_job_whose_step_holds_a_live_lease_is_left_to_its_run(app: Celery) -> None:
    # A long step: the job has not moved for longer than the grace, but its run renews the lease.
    running = make_job(status=JobStatus.RUNNING, idle_s=STALE_S)
    hold_lease(running, 2, for_s=30)
    # Its worker died: the lease lapsed.
    dead = make_job(status=JobStatus.RUNNING, idle_s=STALE_S)
    hold_lease(dead, 2, for_s=-1)

    result = sweep(app)

    assert running not in result.enqueued
    assert dead in result.enqueued
    assert load(running)[:2] == ("running", 1)
