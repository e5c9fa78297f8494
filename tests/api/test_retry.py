"""POST /jobs/{id}/retry: a failed job runs again from its failed step; others are refused."""

from __future__ import annotations

import uuid

import httpx

from tests import images
from tests.helpers.api import assert_error, submit_ok
from tests.helpers.product import add_pipeline, car_config, create_pipeline
from tests.system import wait_for_job


def test_retry_runs_a_failed_job_again_from_the_failed_step(api: httpx.Client) -> None:
    pipeline_id = add_pipeline(
        "retry",
        [
            {"type": "image.fit@v1"},
            {"type": "model.detect_car@v1", "params": {"path": "/missing"}},
            {"type": "storage.save_car_detection@v1"},
        ],
    )
    job_id = submit_ok(api, images.jpeg(seed=11), pipeline_id=pipeline_id)
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
    job_id = submit_ok(api, images.jpeg(seed=12))
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    response = api.post(f"/jobs/{job_id}/retry")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_not_failed"
    assert api.get(f"/jobs/{job_id}").json()["status"] == "succeeded"


def test_retry_of_an_unknown_job_is_404(api: httpx.Client) -> None:
    response = api.post(f"/jobs/{uuid.uuid4()}/retry")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_retry_on_the_current_version_runs_the_fixed_pipeline_from_its_first_step(
    api: httpx.Client,
) -> None:
    # Given: a job failed at its model step, then its pipeline fixed by a PUT
    pipeline_id = create_pipeline(api, car_config(model_path="/missing"), "retry-current")
    job_id = submit_ok(api, images.jpeg(seed=13), pipeline_id=pipeline_id)
    assert wait_for_job(api, job_id)["status"] == "failed"
    fixed = api.put(f"/pipelines/{pipeline_id}", json={"config": car_config()})
    assert fixed.status_code == 200, fixed.text
    # A plain retry still runs the version the job was submitted under
    assert api.post(f"/jobs/{job_id}/retry").status_code == 202
    assert wait_for_job(api, job_id)["pipeline_version"] == 1

    # When
    response = api.post(f"/jobs/{job_id}/retry", params={"version": "current"})

    # Then
    assert response.status_code == 202, response.text
    assert response.json() == {"job_id": job_id, "status": "queued"}
    job = wait_for_job(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["pipeline_version"] == 2
    steps = job["steps"]
    assert isinstance(steps, list)
    assert [(s["status"], s["attempts"]) for s in steps] == [("succeeded", 1)] * 3


def test_retry_on_the_current_version_of_an_archived_pipeline_is_refused(
    api: httpx.Client,
) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(model_path="/missing"), "retry-archived")
    job_id = submit_ok(api, images.jpeg(seed=14), pipeline_id=pipeline_id)
    assert wait_for_job(api, job_id)["status"] == "failed"
    assert api.delete(f"/pipelines/{pipeline_id}").status_code == 200

    # When
    response = api.post(f"/jobs/{job_id}/retry", params={"version": "current"})

    # Then
    assert_error(response, 409, "pipeline_archived")
    assert api.get(f"/jobs/{job_id}").json()["status"] == "failed"


def test_retry_refuses_an_unknown_version_choice(api: httpx.Client) -> None:
    response = api.post(f"/jobs/{uuid.uuid4()}/retry", params={"version": "latest"})

    assert_error(response, 422, "invalid_request")
