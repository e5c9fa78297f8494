"""The retention sweep (JOB_RETENTION_DAYS), run in-process against the real database: which
jobs it deletes, with what, in what batches, and that `pipeline_jobs_finished` never goes down.

The jobs made here are dated 400 days back, and the sweeps keep 365 days, so the rows other
tests make on the shared database are never old enough to be deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.metrics_core import Metric

from api.metrics import JobsCollector
from common.db import get_engine, session_scope
from common.models import CarDetectionRow, Job, JobImage, JobStatus, JobStep, utcnow
from common.repositories import ImageRepository
from common.settings import get_settings
from tests.rows import add_job
from worker import recovery

pytestmark = pytest.mark.system

STEPS = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]
KEPT_DAYS = 365
OLD = timedelta(days=400)


@pytest.fixture(autouse=True)
def retention(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JOB_RETENTION_DAYS", str(KEPT_DAYS))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def make_job(status: str, age: timedelta, *, with_rows: bool = False) -> uuid.UUID:
    """A job of pipeline 1 in `status`, last changed `age` ago; `with_rows`: with an original
    and a processed image and a detection, as a car job that ran leaves them."""
    with session_scope() as session:
        job = add_job(session, 1, STEPS)
        job.status = status
        if JobStatus(status).terminal:
            job.finished_at = utcnow() - age
        job_id = job.id
        if with_rows:
            images = ImageRepository(session)
            images.put(job_id, "original", "image/jpeg", b"\xff\xd8original")
            images.put(job_id, "processed", "image/jpeg", b"\xff\xd8processed")
            session.add(CarDetectionRow(job_id=job_id, label=1, conf=0.9))
        session.flush()
        # Last: the ORM's onupdate would set updated_at to now on any later flush.
        session.execute(sa.update(Job).where(Job.id == job_id).values(updated_at=utcnow() - age))
        return job_id


def rows_of(job_id: uuid.UUID) -> dict[str, int]:
    with session_scope() as session:
        return {
            table.__tablename__: int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where((table.id if table is Job else table.job_id) == job_id)
                )
                or 0
            )
            for table in (Job, JobStep, JobImage, CarDetectionRow)
        }


def finished_metric() -> dict[tuple[str, str], float]:
    """`pipeline_jobs_finished` as a scrape gives it, by (pipeline, outcome)."""
    families: list[Metric] = list(JobsCollector().collect())
    (finished,) = [f for f in families if f.name == "pipeline_jobs_finished"]
    return {
        (s.labels["pipeline"], s.labels["outcome"]): s.value
        for s in finished.samples
        if s.name.endswith("_total")
    }


def test_old_finished_jobs_go_with_everything_that_is_theirs() -> None:
    gone = [
        make_job(JobStatus.SUCCEEDED, OLD, with_rows=True),
        make_job(JobStatus.FAILED, OLD, with_rows=True),
    ]
    kept = [
        make_job(JobStatus.SUCCEEDED, timedelta(days=KEPT_DAYS - 1), with_rows=True),
        make_job(JobStatus.QUEUED, OLD),  # unfinished, however old: the recovery sweep's
        make_job(JobStatus.RUNNING, OLD),
    ]
    assert rows_of(gone[0]) == {"jobs": 1, "job_steps": 3, "job_images": 2, "car_detections": 1}

    assert recovery.expire() >= 2

    for job_id in gone:
        assert rows_of(job_id) == {"jobs": 0, "job_steps": 0, "job_images": 0, "car_detections": 0}
    for job_id in kept:
        assert rows_of(job_id)["jobs"] == 1
    assert rows_of(kept[0]) == {"jobs": 1, "job_steps": 3, "job_images": 2, "car_detections": 1}
    with session_scope() as session:  # not deleted, so not left for the next test's count
        session.execute(sa.delete(Job).where(Job.id.in_(kept)))


def expired_counts() -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            sa.text("SELECT outcome, jobs FROM expired_job_counts WHERE pipeline_id = 1")
        ).all()
    return {str(outcome): int(jobs) for outcome, jobs in rows}


def test_the_finished_count_a_scrape_gives_does_not_go_down() -> None:
    make_job(JobStatus.SUCCEEDED, OLD)
    make_job(JobStatus.SUCCEEDED, OLD)
    make_job(JobStatus.FAILED, OLD)
    before, expired_before = finished_metric(), expired_counts()

    assert recovery.expire() == 3

    assert finished_metric() == before
    expired_after = expired_counts()
    added = {k: expired_after[k] - expired_before.get(k, 0) for k in expired_after}
    assert added == {"succeeded": 2, "failed": 1}


def test_a_backlog_drains_in_batches_over_several_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "EXPIRE_BATCH", 2)
    monkeypatch.setattr(recovery, "EXPIRE_BATCHES", 2)
    jobs = [make_job(JobStatus.SUCCEEDED, OLD + timedelta(minutes=i)) for i in range(5)]

    assert recovery.expire() == 4  # two batches of two, the oldest first
    assert [rows_of(job_id)["jobs"] for job_id in jobs] == [1, 0, 0, 0, 0]
    assert recovery.expire() == 1
    assert rows_of(jobs[0])["jobs"] == 0
    assert recovery.expire() == 0


def test_a_job_another_transaction_holds_is_passed_over_until_it_is_let_go() -> None:
    held = make_job(JobStatus.FAILED, OLD)
    free = make_job(JobStatus.FAILED, OLD)
    with get_engine().connect() as other:  # a retry of `held`, say, in the middle of its update
        other.execute(sa.select(Job.id).where(Job.id == held).with_for_update())

        assert recovery.expire() >= 1

        assert rows_of(free)["jobs"] == 0
        assert rows_of(held)["jobs"] == 1
        other.rollback()
    assert recovery.expire() >= 1
    assert rows_of(held)["jobs"] == 0


def test_retention_off_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    job_id = make_job(JobStatus.SUCCEEDED, timedelta(days=10_000))

    assert recovery.expire() == 0

    assert rows_of(job_id)["jobs"] == 1
    with session_scope() as session:
        session.execute(sa.delete(Job).where(Job.id == job_id))
