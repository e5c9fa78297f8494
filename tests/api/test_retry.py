"""POST /jobs/{id}/retry: a failed job runs again from its failed step; others are refused."""

from __future__ import annotations

import uuid

import httpx

from tests import images
from tests.e2e.test_car_pipeline import submit
from tests.system import wait_for_job
from tests.worker.test_step_outcomes import add_pipeline


def test_retry_runs_a_failed_job_again_from_the_failed_step(api: httpx.Client) -> None:
    pipeline_id = add_pipeline(
        "retry",
        [
            {"type": "image.fit@v1"},
            {"type": "model.detect_car@v1", "params": {"path": "/missing"}},
            {"type": "storage.save_car_detection@v1"},
        ],
    )
    job_id = submit(api, images.jpeg(seed=11), pipeline_id=pipeline_id)
    first = wait_for_job(api, job_id)
    assert first["status"] == "failed"

    response = api.post(f"/jobs/{job_id}/retry")

    assert response.status_code == 202
    assert response.json() == {"job_id": job_id, "status": "queued"}
    assert response.headers["location"] == f"/jobs/{job_id}"
    again = wait_for_job(api, job_id)
    assert again["status"] == "failed"
    steps = again["steps"]
    assert isinstance(steps, list)
    # The image step kept its result; the model step ran a second time.
    assert [(s["status"], s["attempts"]) for s in steps] == [
        ("succeeded", 1),
        ("failed", 2),
        ("pending", 0),
    ]


def test_retry_refuses_a_job_that_has_not_failed(api: httpx.Client) -> None:
    job_id = submit(api, images.jpeg(seed=12))
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    response = api.post(f"/jobs/{job_id}/retry")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_not_failed"
    assert api.get(f"/jobs/{job_id}").json()["status"] == "succeeded"


def test_retry_of_an_unknown_job_is_404(api: httpx.Client) -> None:
    response = api.post(f"/jobs/{uuid.uuid4()}/retry")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"
