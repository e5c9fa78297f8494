"""Submit -> worker chain -> poll, through the real API, worker, mock, PostgreSQL and Redis."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.orm import Session

from common.repositories import CarDetectionRepository, ImageRepository
from tests import images
from tests.conftest import count_rows
from tests.helpers.api import submit_ok
from tests.system import wait_for_job


def test_submitted_job_succeeds_with_a_stored_detection(
    api: httpx.Client, session: Session
) -> None:
    job_id = submit_ok(api, images.jpeg(1920, 1080, seed=1))

    job = wait_for_job(api, job_id)

    assert job["status"] == "succeeded"
    assert job["message"] == "success"
    assert job["error"] is None
    assert [s["status"] for s in job["steps"]] == ["succeeded"] * 3
    assert [s["type"] for s in job["steps"]] == [
        "image.fit@v1",
        "model.detect_car@v1",
        "storage.save_car_detection@v1",
    ]
    assert all(s["duration_ms"] is not None and s["duration_ms"] >= 0 for s in job["steps"])
    row = CarDetectionRepository(session).for_job(uuid.UUID(job_id))
    assert row is not None
    processed = ImageRepository(session).get(uuid.UUID(job_id), "processed")
    assert processed is not None
    assert row.image_id == processed.id
    assert images.size_of(processed.data) == (640, 360)
    original = ImageRepository(session).get(uuid.UUID(job_id), "original")
    assert original is not None
    assert original.content_type == "image/jpeg"
    if job["result"] is None:
        assert row.label == 0
        assert row.width is None
    else:
        assert row.label == 1
        assert job["result"] == {
            "top_left_x": row.top_left_x,
            "top_left_y": row.top_left_y,
            "width": row.width,
            "height": row.height,
            "conf": row.conf,
            "label": 1,
        }


def test_progress_is_visible_while_the_job_runs(api: httpx.Client) -> None:
    job_id = submit_ok(api, images.jpeg(800, 600, seed=2))
    seen: list[dict[str, object]] = []

    final = wait_for_job(api, job_id, seen=seen)

    assert final["status"] == "succeeded"
    statuses = [answer["status"] for answer in seen]
    assert "running" in statuses
    in_model_step = [
        answer for answer in seen if answer["status"] == "running" and answer["current_step"] == 2
    ]
    assert in_model_step, f"never saw the job in the model step: {statuses}"
    steps = in_model_step[0]["steps"]
    assert isinstance(steps, list)
    assert [s["status"] for s in steps] == ["succeeded", "running", "pending"]
    assert final["started_at"] is not None
    assert final["finished_at"] is not None


def test_null_answers_are_stored_as_label_zero_and_boxes_as_label_one(
    api: httpx.Client, session: Session
) -> None:
    job_ids = [submit_ok(api, images.jpeg(320, 240, seed=100 + n)) for n in range(10)]

    jobs = [wait_for_job(api, job_id) for job_id in job_ids]

    assert all(job["status"] == "succeeded" for job in jobs)
    rows = [CarDetectionRepository(session).for_job(uuid.UUID(j)) for j in job_ids]
    assert all(row is not None for row in rows)
    empty = [(job, row) for job, row in zip(jobs, rows, strict=True) if row and row.label == 0]
    found = [(job, row) for job, row in zip(jobs, rows, strict=True) if row and row.label == 1]
    assert empty, "the seeded mock answers null for some of these ten images"
    assert found, "the seeded mock finds a car in some of these ten images"
    for job, row in empty:
        assert job["result"] is None
        assert (row.top_left_x, row.top_left_y, row.width, row.height, row.conf) == (None,) * 5
    for job, row in found:
        result = job["result"]
        assert isinstance(result, dict)
        assert row.width is not None
        assert row.height is not None
        assert 0 <= result["top_left_x"] <= 320 - row.width
        assert 0 <= result["top_left_y"] <= 240 - row.height


def test_unknown_pipeline_is_404_and_stores_nothing(api: httpx.Client) -> None:
    before = count_rows("jobs"), count_rows("job_images")

    response = api.post(
        "/jobs", files={"image": ("a.jpg", images.jpeg())}, data={"pipeline_id": 4242}
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "pipeline_not_found"
    assert (count_rows("jobs"), count_rows("job_images")) == before


def test_compat_endpoint_waits_and_answers_success(api: httpx.Client) -> None:
    response = api.post(
        "/process_image/", params={"pipeline_id": 1}, files={"image": ("car.jpg", images.jpeg())}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "success"
    assert api.get(f"/jobs/{body['job_id']}").json()["status"] == "succeeded"


def test_compat_endpoint_takes_the_pipeline_id_as_a_form_field_too(api: httpx.Client) -> None:
    response = api.post(
        "/process_image/", data={"pipeline_id": "1"}, files={"image": ("car.jpg", images.jpeg())}
    )

    assert response.status_code == 200, response.text
    assert response.json()["message"] == "success"


def test_compat_endpoint_rejects_an_unknown_pipeline(api: httpx.Client) -> None:
    response = api.post(
        "/process_image/", params={"pipeline_id": 4242}, files={"image": ("a.jpg", images.jpeg())}
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "pipeline_not_found"
