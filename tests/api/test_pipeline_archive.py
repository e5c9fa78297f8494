"""DELETE /pipelines/{id} archives: no new jobs; the pipeline and its jobs stay readable."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests import images
from tests.helpers.api import assert_error, stored_rows, submit, submit_ok, wait_until_idle
from tests.helpers.product import batch, car_config, create_pipeline
from tests.system import wait_for_job


def archived_pipeline_with_a_job(api: httpx.Client) -> tuple[int, str]:
    pipeline_id = create_pipeline(api, car_config(320), "archived")
    job_id = submit_ok(api, images.jpeg(640, 480, seed=41), pipeline_id)
    assert wait_for_job(api, job_id)["status"] == "succeeded"
    response = api.delete(f"/pipelines/{pipeline_id}")
    assert response.status_code == 200, response.text
    return pipeline_id, job_id


def test_delete_archives_the_pipeline_and_get_shows_when(api: httpx.Client) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(), "archive-me")
    before = datetime.now().astimezone()

    # When
    response = api.delete(f"/pipelines/{pipeline_id}")

    # Then: the answer, GET and the list all show archived_at
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == pipeline_id
    assert datetime.fromisoformat(body["archived_at"]) >= before.replace(microsecond=0)
    assert api.get(f"/pipelines/{pipeline_id}").json() == body
    listed = {p["id"]: p for p in api.get("/pipelines").json()}
    assert listed[pipeline_id] == body
    only_archived = {p["id"] for p in api.get("/pipelines", params={"archived": "true"}).json()}
    not_archived = {p["id"] for p in api.get("/pipelines", params={"archived": "false"}).json()}
    assert pipeline_id in only_archived
    assert pipeline_id not in not_archived
    assert 1 in not_archived


def test_delete_again_changes_nothing(api: httpx.Client) -> None:
    pipeline_id = create_pipeline(api, car_config(), "twice")
    first = api.delete(f"/pipelines/{pipeline_id}").json()

    again = api.delete(f"/pipelines/{pipeline_id}")

    assert again.status_code == 200
    assert again.json() == first


def test_an_archived_pipeline_takes_no_new_jobs_and_stores_nothing(api: httpx.Client) -> None:
    # Given
    pipeline_id, _ = archived_pipeline_with_a_job(api)
    wait_until_idle()
    before = stored_rows()
    upload = images.jpeg(64, 48)

    # When
    single = submit(api, upload, pipeline_id)
    several = batch(api, [upload, upload], pipeline_id)
    waited = api.post(
        "/process_image/", params={"pipeline_id": pipeline_id}, files={"image": ("a.jpg", upload)}
    )

    # Then
    for response in (single, several, waited):
        error = assert_error(response, 409, "pipeline_archived")
        assert f"pipeline {pipeline_id}" in error["message"]
    assert stored_rows() == before


def test_the_jobs_of_an_archived_pipeline_stay_readable(api: httpx.Client) -> None:
    # Given
    pipeline_id, job_id = archived_pipeline_with_a_job(api)

    # When
    job = api.get(f"/jobs/{job_id}")
    listed = api.get("/jobs", params={"pipeline_id": pipeline_id})
    processed = api.get(f"/jobs/{job_id}/image", params={"variant": "processed"})
    versions = api.get(f"/pipelines/{pipeline_id}/versions")

    # Then
    assert job.status_code == 200
    assert job.json()["status"] == "succeeded"
    assert [item["job_id"] for item in listed.json()["items"]] == [job_id]
    assert processed.status_code == 200
    assert images.size_of(processed.content) == (320, 240)
    assert [v["version"] for v in versions.json()] == [1]


def test_an_archived_pipeline_cannot_get_a_new_version(api: httpx.Client) -> None:
    pipeline_id, _ = archived_pipeline_with_a_job(api)

    response = api.put(f"/pipelines/{pipeline_id}", json={"config": car_config(640)})

    assert_error(response, 409, "pipeline_archived")
    assert api.get(f"/pipelines/{pipeline_id}").json()["version"] == 1


def test_delete_of_an_unknown_pipeline_is_404(api: httpx.Client) -> None:
    assert_error(api.delete("/pipelines/999999"), 404, "pipeline_not_found")
