"""Repositories on the real test PostgreSQL; every test rolls back what it wrote."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.bootstrap import CAR_PIPELINE_ID, CAR_PIPELINE_NAME
from common.models import CarDetectionRow, Job, JobImage, JobStatus, StepStatus, utcnow
from common.pipeline import Detection, build_pipeline, default_registry
from common.repositories import (
    ORIGINAL,
    PROCESSED,
    CarDetectionRepository,
    ImageRepository,
    JobRepository,
    PipelineRepository,
)
from tests.rows import add_job

STEP_TYPES = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]


@pytest.fixture
def db(session: Session) -> Iterator[Session]:
    """The test database in a transaction that is rolled back afterwards."""
    try:
        yield session
    finally:
        session.rollback()


@pytest.fixture
def job(db: Session) -> Job:
    return add_job(db, CAR_PIPELINE_ID, STEP_TYPES)


def image_rows(db: Session, job_id: uuid.UUID) -> int:
    count = select(func.count()).select_from(JobImage).where(JobImage.job_id == job_id)
    return db.scalar(count) or 0


def box(x: int, conf: float) -> Detection:
    return Detection(top_left_x=x, top_left_y=2, width=30, height=40, conf=conf, label=1)


# --- pipelines --------------------------------------------------------------------------------


def test_car_pipeline_is_found_by_id_with_a_valid_config(db: Session) -> None:
    pipeline = PipelineRepository(db).get(CAR_PIPELINE_ID)

    assert pipeline is not None
    assert pipeline.name == CAR_PIPELINE_NAME
    assert build_pipeline(pipeline.config, default_registry()).step_types == STEP_TYPES


def test_missing_pipeline_is_none(db: Session) -> None:
    assert PipelineRepository(db).get(987654) is None


def test_pipelines_are_listed_by_id(db: Session) -> None:
    pipelines = PipelineRepository(db)
    added = pipelines.add(f"test-{uuid.uuid4().hex}", "listed", {"datatype": "ImageData"})

    listed = pipelines.list()

    ids = [p.id for p in listed]
    assert ids == sorted(ids)
    assert ids[0] == CAR_PIPELINE_ID
    assert added.id in ids


# --- jobs -------------------------------------------------------------------------------------


def test_new_job_is_queued_with_one_pending_step_per_type(db: Session, job: Job) -> None:
    db.expire_all()

    stored = JobRepository(db).get(job.id)

    assert stored is not None
    assert stored.pipeline_id == CAR_PIPELINE_ID
    assert stored.status == JobStatus.QUEUED
    assert stored.payload == {}
    assert [(s.position, s.step_type, s.status, s.attempts) for s in stored.steps] == [
        (1, STEP_TYPES[0], StepStatus.PENDING, 0),
        (2, STEP_TYPES[1], StepStatus.PENDING, 0),
        (3, STEP_TYPES[2], StepStatus.PENDING, 0),
    ]


# --- images -----------------------------------------------------------------------------------


def test_putting_an_image_twice_keeps_one_row_with_the_new_bytes(db: Session, job: Job) -> None:
    images = ImageRepository(db)
    images.put(job.id, ORIGINAL, "image/png", b"first")

    images.put(job.id, ORIGINAL, "image/jpeg", b"second!")

    assert image_rows(db, job.id) == 1
    stored = images.get(job.id, ORIGINAL)
    assert stored is not None
    assert (stored.content_type, stored.size, stored.data) == ("image/jpeg", 7, b"second!")


def test_current_image_is_the_original_until_a_processed_one_exists(db: Session, job: Job) -> None:
    images = ImageRepository(db)
    images.put(job.id, ORIGINAL, "image/png", b"original")
    before = images.current(job.id, with_data=True)

    images.put(job.id, PROCESSED, "image/jpeg", b"processed")
    after = images.current(job.id, with_data=True)

    assert before is not None
    assert (before.variant, before.data) == (ORIGINAL, b"original")
    assert after is not None
    assert (after.variant, after.data) == (PROCESSED, b"processed")
    assert image_rows(db, job.id) == 2


def test_current_image_of_a_job_without_images_is_none(db: Session, job: Job) -> None:
    assert ImageRepository(db).current(job.id) is None


# --- car detections ---------------------------------------------------------------------------


def test_saving_a_detection_twice_keeps_one_row_with_the_latest_values(
    db: Session, job: Job
) -> None:
    images = ImageRepository(db)
    images.put(job.id, ORIGINAL, "image/png", b"original")
    images.put(job.id, PROCESSED, "image/jpeg", b"processed")
    original, processed = images.get(job.id, ORIGINAL), images.get(job.id, PROCESSED)
    assert original is not None
    assert processed is not None
    detections = CarDetectionRepository(db)
    detections.save(job.id, original.id, box(1, 0.25))

    detections.save(job.id, processed.id, box(7, 0.75))

    rows = db.scalars(select(CarDetectionRow).where(CarDetectionRow.job_id == job.id)).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.image_id == processed.id
    assert (row.top_left_x, row.top_left_y, row.width, row.height) == (7, 2, 30, 40)
    assert (row.conf, row.label) == (0.75, 1)


def test_no_detection_is_stored_as_label_0_without_a_box(db: Session, job: Job) -> None:
    detections = CarDetectionRepository(db)
    detections.save(job.id, None, box(1, 0.5))

    detections.save(job.id, None, None)

    row = detections.for_job(job.id)
    assert row is not None
    assert row.label == 0
    assert (row.top_left_x, row.top_left_y, row.width, row.height, row.conf) == (None,) * 5


def test_job_without_a_detection_has_none(db: Session, job: Job) -> None:
    assert CarDetectionRepository(db).for_job(job.id) is None


def test_an_image_stored_from_a_file_keeps_every_byte(db: Session, job: Job) -> None:
    # Every byte value, over several COPY chunks, with an odd length and a type needing escapes.
    content = bytes(range(256)) * 1500 + b"\\\t\n"
    file = io.BytesIO(b"skipped" + content)
    file.seek(len(b"skipped"))

    ImageRepository(db).put_file(job.id, ORIGINAL, "image/x-odd\tname\\", file, len(content))

    stored = ImageRepository(db).get(job.id, ORIGINAL)
    assert stored is not None
    assert (stored.content_type, stored.size) == ("image/x-odd\tname\\", len(content))
    assert stored.data == content
    assert abs(stored.created_at - utcnow()) < timedelta(seconds=30)
    assert image_rows(db, job.id) == 1
    current = ImageRepository(db).current(job.id, with_data=True)
    assert current is not None
    assert (current.id, current.variant, current.size) == (stored.id, ORIGINAL, len(content))
    assert current.data == content
