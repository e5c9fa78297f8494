"""A job's life as the gateway and the workers write it (insert, claim a step, record its
result), each one statement: the rows each leaves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.bootstrap import CAR_PIPELINE_ID
from common.models import Job, JobImage, JobStatus, StepStatus, utcnow
from common.repositories import ORIGINAL, PROCESSED, JobRepository, PipelineRepository

STEP_TYPES = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]
LEASE_S = 30.0
LAPSED = -1.0  # a lease that has lapsed already: its run is taken for dead by the next claim


@pytest.fixture
def db(session: Session) -> Iterator[Session]:
    try:
        yield session
    finally:
        session.rollback()


@pytest.fixture
def job_id(db: Session) -> uuid.UUID:
    version = PipelineRepository(db).current_version_id(CAR_PIPELINE_ID)
    assert version is not None
    queued = JobRepository(db).insert(
        CAR_PIPELINE_ID, STEP_TYPES, version[0], ("image/jpeg", b"original bytes")
    )
    assert queued.steps == list(enumerate(STEP_TYPES, start=1))
    return queued.id


def load(db: Session, job_id: uuid.UUID) -> Job:
    job = JobRepository(db).get(job_id, fresh=True)
    assert job is not None
    return job


def images(db: Session, job_id: uuid.UUID) -> dict[str, bytes]:
    rows = db.execute(select(JobImage.variant, JobImage.data).where(JobImage.job_id == job_id))
    return {variant: bytes(data) for variant, data in rows}


def test_a_new_job_is_queued_with_pending_steps_and_its_original_image(
    db: Session, job_id: uuid.UUID
) -> None:
    job = load(db, job_id)

    assert (job.status, job.enqueue_count, job.payload) == (JobStatus.QUEUED, 1, {})
    assert job.enqueued_at is not None
    assert job.created_at == job.updated_at
    assert [(s.position, s.step_type, s.status, s.attempts) for s in job.steps] == [
        (n, t, StepStatus.PENDING, 0) for n, t in enumerate(STEP_TYPES, start=1)
    ]
    assert images(db, job_id) == {ORIGINAL: b"original bytes"}


def test_a_claim_starts_the_step_and_reads_the_image_the_step_works_on(
    db: Session, job_id: uuid.UUID
) -> None:
    jobs = JobRepository(db)

    state = jobs.claim_step(job_id, 1, lease_s=LAPSED)

    assert state is not None
    assert (state.status, state.step_status, state.step_count, state.attempt) == (
        JobStatus.QUEUED,  # as it was before the claim
        StepStatus.PENDING,
        3,
        1,
    )
    assert state.image is not None
    assert (state.image.variant, state.image.content_type, state.image.size) == (
        ORIGINAL,
        "image/jpeg",
        len(b"original bytes"),
    )
    assert state.image.data == b""  # the bytes were not asked for
    job = load(db, job_id)
    assert (job.status, job.current_step, job.started_at is not None) == ("running", 1, True)
    assert (job.steps[0].status, job.steps[0].attempts) == (StepStatus.RUNNING, 1)
    # Claimed again (the first attempt died, its lease lapsed): a new attempt, which fences off
    # the first; this time for a step that reads the image's bytes.
    again = jobs.claim_step(job_id, 1, lease_s=LEASE_S, with_data=True)
    assert again is not None
    assert again.attempt == 2
    assert again.image is not None
    assert again.image.data == b"original bytes"


def test_a_result_is_recorded_only_for_the_current_attempt(db: Session, job_id: uuid.UUID) -> None:
    jobs = JobRepository(db)
    jobs.claim_step(job_id, 1, lease_s=LAPSED)
    jobs.claim_step(job_id, 1, lease_s=LEASE_S)  # attempt 2 takes over

    stale = jobs.finish_attempt(
        job_id, 1, 1, 5.0, {"late": True}, last=True, image=("image/jpeg", b"stale")
    )
    # It changed nothing, with no rollback (the worker runs it on its own, in autocommit).
    assert stale is False
    assert images(db, job_id) == {ORIGINAL: b"original bytes"}
    job = load(db, job_id)
    assert (job.status, job.payload, job.finished_at) == (JobStatus.RUNNING, {}, None)

    current = jobs.finish_attempt(
        job_id, 1, 2, 7.5, {"n": 1}, last=False, image=("image/jpeg", b"processed bytes")
    )

    assert current is True
    job = load(db, job_id)
    assert (job.status, job.payload) == (JobStatus.RUNNING, {"n": 1})
    assert (job.steps[0].status, job.steps[0].duration_ms) == (StepStatus.SUCCEEDED, 7.5)
    assert images(db, job_id) == {ORIGINAL: b"original bytes", PROCESSED: b"processed bytes"}
    # The next step works on the processed image.
    state = jobs.claim_step(job_id, 2, lease_s=LEASE_S, with_data=True)
    assert state is not None
    assert state.image is not None
    assert (state.image.variant, state.image.size) == (PROCESSED, len(b"processed bytes"))
    assert state.image.data == b"processed bytes"


def test_the_last_result_ends_the_job_and_a_done_step_is_not_started_again(
    db: Session, job_id: uuid.UUID
) -> None:
    jobs = JobRepository(db)
    for position in (1, 2, 3):
        state = jobs.claim_step(job_id, position, lease_s=LEASE_S)
        assert state is not None
        assert state.attempt == 1
        assert jobs.finish_attempt(job_id, position, 1, 1.0, {}, last=position == 3)

    job = load(db, job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.finished_at is not None
    again = jobs.claim_step(job_id, 3, lease_s=LEASE_S)

    assert again is not None
    assert (again.status, again.step_status, again.attempt) == (
        JobStatus.SUCCEEDED,
        StepStatus.SUCCEEDED,
        None,
    )
    assert [s.attempts for s in load(db, job_id).steps] == [1, 1, 1]
    assert images(db, job_id) == {ORIGINAL: b"original bytes"}  # no step made an image


def test_a_claim_of_a_missing_job_or_step_starts_nothing(db: Session, job_id: uuid.UUID) -> None:
    jobs = JobRepository(db)

    assert jobs.claim_step(uuid.uuid4(), 1, lease_s=LEASE_S) is None
    state = jobs.claim_step(job_id, 4, lease_s=LEASE_S)

    assert state is not None
    assert (state.step_status, state.attempt) == (None, None)
    assert load(db, job_id).status == JobStatus.QUEUED


def test_a_step_held_by_a_live_lease_is_not_claimed_again(db: Session, job_id: uuid.UUID) -> None:
    jobs = JobRepository(db)
    first = jobs.claim_step(job_id, 1, lease_s=LEASE_S)
    assert first is not None
    assert first.attempt == 1

    again = jobs.claim_step(job_id, 1, lease_s=LEASE_S)

    assert again is not None
    assert (again.step_status, again.attempt) == (StepStatus.RUNNING, None)
    assert again.lease_expires_at is not None
    assert again.leased(utcnow())
    step = load(db, job_id).steps[0]
    assert (step.status, step.attempts) == (StepStatus.RUNNING, 1)
    assert step.lease_expires_at == again.lease_expires_at


def test_leases_run_on_the_databases_clock_whatever_a_workers_clock_says(
    db: Session, job_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = JobRepository(db)
    first = jobs.claim_step(job_id, 1, lease_s=LEASE_S)
    assert first is not None
    assert first.attempt == 1

    # Another host, its clock an hour ahead, gets the same step's message
    monkeypatch.setattr("common.repositories.steps.utcnow", lambda: utcnow() + timedelta(hours=1))
    ahead = jobs.claim_step(job_id, 1, lease_s=LEASE_S)
    # ... and one an hour behind renews the lease
    monkeypatch.setattr("common.repositories.steps.utcnow", lambda: utcnow() - timedelta(hours=1))
    renewed = jobs.renew_leases([(job_id, 1, 1)], LEASE_S)
    behind = jobs.claim_step(job_id, 1, lease_s=LEASE_S)

    # The lease is live for both, and lapses LEASE_S after the database's now
    assert ahead is not None
    assert behind is not None
    assert (ahead.attempt, behind.attempt, renewed) == (None, None, 1)
    assert behind.db_now is not None
    assert behind.lease_expires_at is not None
    assert behind.leased(behind.db_now)
    assert (behind.lease_expires_at - behind.db_now).total_seconds() == pytest.approx(LEASE_S)


def test_a_renewed_lease_holds_the_step_and_a_released_one_lets_the_retry_claim_it(
    db: Session, job_id: uuid.UUID
) -> None:
    jobs = JobRepository(db)
    jobs.claim_step(job_id, 1, lease_s=LAPSED)

    # Its run renews it before another delivery claims; an older attempt's renewal does nothing.
    assert jobs.renew_leases([(job_id, 1, 1)], LEASE_S) == 1
    assert jobs.renew_leases([(job_id, 1, 7)], LEASE_S) == 0
    held = jobs.claim_step(job_id, 1, lease_s=LEASE_S)
    assert held is not None
    assert held.attempt is None

    # The attempt fails for a transient reason: it lets the lease go, so its retry may claim.
    jobs.note_step_error(load(db, job_id), 1, "model server did not answer (retrying in 1 s)")
    db.flush()
    assert jobs.renew_leases([(job_id, 1, 1)], LEASE_S) == 0
    retry = jobs.claim_step(job_id, 1, lease_s=LEASE_S)

    assert retry is not None
    assert retry.attempt == 2


def test_a_job_is_inserted_under_a_version_only_while_it_is_current(db: Session) -> None:
    pipelines, jobs = PipelineRepository(db), JobRepository(db)
    pipeline = pipelines.get(CAR_PIPELINE_ID)
    assert pipeline is not None
    current = pipelines.current_version_id(CAR_PIPELINE_ID)
    assert current is not None
    first_version = current[0]
    image = ("image/jpeg", b"original bytes")

    queued = jobs.insert_if_current(CAR_PIPELINE_ID, STEP_TYPES, first_version, image)

    assert queued is not None
    job = load(db, queued.id)
    assert (job.pipeline_version_id, job.status, len(job.steps)) == (first_version, "queued", 3)
    assert images(db, queued.id) == {ORIGINAL: b"original bytes"}

    # A newer version: the first is no longer current, and nothing is stored under it.
    pipelines.add_version(pipeline, {**pipeline.config, "description": "newer"})
    count = db.scalar(select(func.count()).select_from(Job))
    assert jobs.insert_if_current(CAR_PIPELINE_ID, STEP_TYPES, first_version, image) is None
    newer = pipelines.current_version_id(CAR_PIPELINE_ID)
    assert newer is not None
    assert newer[0] != first_version
    # Archived: not even the current version takes a job.
    pipelines.archive(pipeline)
    db.flush()
    assert jobs.insert_if_current(CAR_PIPELINE_ID, STEP_TYPES, newer[0], image) is None
    assert db.scalar(select(func.count()).select_from(Job)) == count
