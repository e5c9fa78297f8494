"""PUT /pipelines/{id} stores a new version; a job runs the version current when submitted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from common.queue import RUN_JOB_TASK, client
from tests import images
from tests.conftest import TEST_ENV, count_rows
from tests.helpers.api import assert_error, submit_ok
from tests.helpers.product import (
    car_config,
    create_pipeline,
    drop_queue,
    processed_size,
    side_api,
    unique,
)
from tests.system import System, wait_for_job

PHOTO = images.jpeg(1280, 960, seed=31)  # fits 640 -> 640x480, 320 -> 320x240


@pytest.fixture(scope="module")
def paused_api(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API whose queue no worker reads: what it accepts waits until a test hands it over."""
    queue = f"{TEST_ENV['QUEUE_NAME']}-paused"
    try:
        with side_api(tmp_path_factory.mktemp("paused-api"), QUEUE_NAME=queue) as api:
            yield api
    finally:
        drop_queue(queue)


def test_put_stores_a_new_version_that_get_answers(api: httpx.Client) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "versions")

    # When
    response = api.put(
        f"/pipelines/{pipeline_id}",
        json={"config": car_config(320), "description": "now 320"},
    )

    # Then: version 2, stored in canonical form, and the pipeline answers it
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["description"] == "now 320"
    assert body["config"]["steps"][0]["params"] == {
        "max_width": 320,
        "max_height": 320,
        "quality": 90,
        "resample": "lanczos",
    }
    assert api.get(f"/pipelines/{pipeline_id}").json() == body


def test_versions_lists_every_version_oldest_first(api: httpx.Client) -> None:
    # Given: three versions
    pipeline_id = create_pipeline(api, car_config(640), "listing")
    first = api.get(f"/pipelines/{pipeline_id}").json()["config"]
    for box in (320, 160):
        assert api.put(f"/pipelines/{pipeline_id}", json={"config": car_config(box)}).is_success

    # When
    response = api.get(f"/pipelines/{pipeline_id}/versions")

    # Then
    assert response.status_code == 200
    versions = response.json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert all(set(v) == {"version", "config", "created_at"} for v in versions)
    assert versions[0]["config"] == first
    assert [v["config"]["steps"][0]["params"]["max_width"] for v in versions] == [640, 320, 160]
    assert [v["created_at"] for v in versions] == sorted(v["created_at"] for v in versions)
    assert versions[-1]["config"] == api.get(f"/pipelines/{pipeline_id}").json()["config"]
    one = api.get(f"/pipelines/{pipeline_id}/versions/2")
    assert one.status_code == 200
    assert one.json() == versions[1]


def test_a_job_submitted_before_a_put_runs_the_version_it_was_submitted_under(
    api: httpx.Client, paused_api: httpx.Client
) -> None:
    # Given: a job accepted under version 1 (fit into 640) that no worker has started
    pipeline_id = create_pipeline(api, car_config(640), "pinned")
    early = submit_ok(paused_api, PHOTO, pipeline_id)
    assert api.get(f"/jobs/{early}").json()["status"] == "queued"

    # When: version 2 (fit into 320) is stored, then the early job is handed to the worker
    assert api.put(f"/pipelines/{pipeline_id}", json={"config": car_config(320)}).is_success
    client().send_task(RUN_JOB_TASK, args=[early], queue=TEST_ENV["QUEUE_NAME"])
    late = submit_ok(api, PHOTO, pipeline_id)

    # Then: each job ran the version current when it was submitted
    early_job, late_job = wait_for_job(api, early), wait_for_job(api, late)
    assert (early_job["status"], late_job["status"]) == ("succeeded", "succeeded")
    assert (early_job["pipeline_version"], late_job["pipeline_version"]) == (1, 2)
    assert processed_size(api, early) == (640, 480)
    assert processed_size(api, late) == (320, 240)


def test_the_gateway_that_stored_a_job_under_a_version_takes_the_next_after_a_put(
    api: httpx.Client,
) -> None:
    # Given: this API process has stored a job under version 1 (and remembers it as current)
    pipeline_id = create_pipeline(api, car_config(640), "remembered")
    first = submit_ok(api, PHOTO, pipeline_id)

    # When: version 2 is stored, and the same process takes another job
    assert api.put(f"/pipelines/{pipeline_id}", json={"config": car_config(320)}).is_success
    second = submit_ok(api, PHOTO, pipeline_id)

    # Then: the second job runs version 2
    first_job, second_job = wait_for_job(api, first), wait_for_job(api, second)
    assert (first_job["pipeline_version"], second_job["pipeline_version"]) == (1, 2)
    assert processed_size(api, second) == (320, 240)


def test_a_retried_job_runs_its_own_version_not_the_current_one(api: httpx.Client) -> None:
    # Given: a job failed under version 1, whose model path the server refuses
    pipeline_id = create_pipeline(api, car_config(640, model_path="/no-such-endpoint"), "retry")
    job_id = submit_ok(api, PHOTO, pipeline_id)
    first = wait_for_job(api, job_id)
    assert first["status"] == "failed"
    assert api.put(f"/pipelines/{pipeline_id}", json={"config": car_config(640)}).is_success

    # When: version 2 has the right path, and the old job is retried
    assert api.post(f"/jobs/{job_id}/retry").status_code == 202
    again = wait_for_job(api, job_id)

    # Then: it ran version 1 again, and failed again for the same reason
    assert again["status"] == "failed"
    assert again["pipeline_version"] == 1
    assert "HTTP 404" in str(again["error"])
    fixed = wait_for_job(api, submit_ok(api, PHOTO, pipeline_id))
    assert (fixed["status"], fixed["pipeline_version"]) == ("succeeded", 2)


def test_put_with_an_invalid_config_is_422_naming_the_step_and_keeps_the_version(
    api: httpx.Client,
) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "invalid")
    before = count_rows("pipeline_versions")
    config = car_config(640)
    config["steps"][0]["params"]["max_width"] = 1

    # When
    response = api.put(f"/pipelines/{pipeline_id}", json={"config": config})

    # Then
    error = assert_error(response, 422, "invalid_pipeline_config")
    assert "step 1 ('image.fit@v1')" in error["message"]
    assert error["details"][0]["position"] == 1
    assert count_rows("pipeline_versions") == before
    assert api.get(f"/pipelines/{pipeline_id}").json()["version"] == 1


def test_put_with_a_webhook_to_a_private_address_is_422_naming_the_step_and_the_rule(
    api: httpx.Client,
) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "private-hook")
    config = car_config(640)
    config["steps"].append({"type": "notify.webhook@v1", "params": {"url": "http://10.1.2.3/h"}})

    # When
    response = api.put(f"/pipelines/{pipeline_id}", json={"config": config})

    # Then
    error = assert_error(response, 422, "invalid_pipeline_config")
    position = len(config["steps"])
    assert f"step {position} ('notify.webhook@v1')" in error["message"]
    assert "10.1.2.3 is a private (RFC 1918) address" in error["message"]
    assert "WEBHOOK_ALLOWED_NETWORKS" in error["message"]
    assert api.get(f"/pipelines/{pipeline_id}").json()["version"] == 1


def test_put_with_the_current_config_makes_no_new_version(api: httpx.Client) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "same")

    # When: the same config, with its defaults left out this time, and a new description
    response = api.put(
        f"/pipelines/{pipeline_id}", json={"config": car_config(640), "description": "renamed"}
    )

    # Then
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.json()["description"] == "renamed"
    assert len(api.get(f"/pipelines/{pipeline_id}/versions").json()) == 1


def test_put_of_an_unknown_pipeline_is_404(api: httpx.Client) -> None:
    response = api.put("/pipelines/999999", json={"config": car_config()})

    assert_error(response, 404, "pipeline_not_found")


@pytest.mark.parametrize(
    "body",
    [{}, {"config": car_config(), "colour": "red"}, {"config": []}, {"config": {}, "name": ""}],
    ids=["no-config", "unknown-field", "config-not-object", "empty-name"],
)
def test_put_with_a_malformed_body_is_422_invalid_request(api: httpx.Client, body: object) -> None:
    response = api.put("/pipelines/1", json=body)

    assert_error(response, 422, "invalid_request")
    assert api.get("/pipelines/1").json()["version"] == 1


def test_versions_of_unknown_pipeline_or_version_are_404(api: httpx.Client) -> None:
    assert_error(api.get("/pipelines/999999/versions"), 404, "pipeline_not_found")
    assert_error(api.get("/pipelines/999999/versions/1"), 404, "pipeline_not_found")
    assert_error(api.get("/pipelines/1/versions/999"), 404, "pipeline_version_not_found")


# --- PUT takes the pipeline as GET answers it -------------------------------------------------


def versions_of(api: httpx.Client, pipeline_id: int) -> list[int]:
    return [v["version"] for v in api.get(f"/pipelines/{pipeline_id}/versions").json()]


def test_put_of_the_pipeline_as_get_answers_it_changes_nothing(api: httpx.Client) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "echo")
    read = api.get(f"/pipelines/{pipeline_id}").json()

    # When
    response = api.put(f"/pipelines/{pipeline_id}", json=read)

    # Then
    assert response.status_code == 200, response.text
    assert response.json() == read
    assert versions_of(api, pipeline_id) == [1]


def test_put_of_what_get_answers_with_a_new_config_and_name_renames_and_makes_a_version(
    api: httpx.Client,
) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "before")
    read = api.get(f"/pipelines/{pipeline_id}").json()
    name = unique("after")

    # When
    response = api.put(
        f"/pipelines/{pipeline_id}", json={**read, "name": name, "config": car_config(320)}
    )

    # Then
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["version"], body["created_at"]) == (name, 2, read["created_at"])
    assert api.get(f"/pipelines/{pipeline_id}").json() == body
    assert versions_of(api, pipeline_id) == [1, 2]


def test_put_with_only_a_name_and_the_config_renames_without_a_new_version(
    api: httpx.Client,
) -> None:
    pipeline_id = create_pipeline(api, car_config(640), "rename")
    name = unique("renamed")

    response = api.put(f"/pipelines/{pipeline_id}", json={"name": name, "config": car_config(640)})

    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["version"]) == (name, 1)
    assert versions_of(api, pipeline_id) == [1]


def test_put_renaming_to_a_name_taken_is_409_and_changes_nothing(api: httpx.Client) -> None:
    # Given
    taken = api.get(f"/pipelines/{create_pipeline(api, car_config(640), 'taken')}").json()["name"]
    pipeline_id = create_pipeline(api, car_config(640), "clash")
    before = api.get(f"/pipelines/{pipeline_id}").json()

    # When: a new config too, which must not be stored either
    response = api.put(
        f"/pipelines/{pipeline_id}", json={**before, "name": taken, "config": car_config(320)}
    )

    # Then
    error = assert_error(response, 409, "pipeline_name_taken")
    assert taken in error["message"]
    assert api.get(f"/pipelines/{pipeline_id}").json() == before
    assert versions_of(api, pipeline_id) == [1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 1),
        ("version", 2),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("archived_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_put_with_a_read_only_field_that_differs_is_422_naming_it(
    api: httpx.Client, field: str, value: object
) -> None:
    # Given
    pipeline_id = create_pipeline(api, car_config(640), "read-only")
    before = api.get(f"/pipelines/{pipeline_id}").json()

    # When
    response = api.put(
        f"/pipelines/{pipeline_id}", json={**before, field: value, "config": car_config(320)}
    )

    # Then
    error = assert_error(response, 422, "read_only_field")
    assert error["message"].startswith(f"{field} cannot be changed")
    [detail] = error["details"]
    assert detail["field"] == f"body.{field}"
    assert detail["message"].startswith("read-only: it is ")
    assert api.get(f"/pipelines/{pipeline_id}").json() == before
    assert versions_of(api, pipeline_id) == [1]


def test_put_takes_a_timestamp_written_with_another_offset_for_the_same_instant(
    api: httpx.Client,
) -> None:
    pipeline_id = create_pipeline(api, car_config(640), "offset")
    read = api.get(f"/pipelines/{pipeline_id}").json()
    created = datetime.fromisoformat(read["created_at"])
    elsewhere = created.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()

    response = api.put(f"/pipelines/{pipeline_id}", json={**read, "created_at": elsewhere})

    assert response.status_code == 200, response.text


def test_put_of_a_pipeline_read_before_another_put_is_422_on_its_version(
    api: httpx.Client,
) -> None:
    # Given: a client read version 1, then another made version 2
    pipeline_id = create_pipeline(api, car_config(640), "stale")
    stale = api.get(f"/pipelines/{pipeline_id}").json()
    assert api.put(f"/pipelines/{pipeline_id}", json={"config": car_config(320)}).status_code == 200

    # When
    response = api.put(f"/pipelines/{pipeline_id}", json={**stale, "config": car_config(480)})

    # Then
    error = assert_error(response, 422, "read_only_field")
    assert error["details"] == [{"field": "body.version", "message": "read-only: it is 2, not 1"}]
    assert versions_of(api, pipeline_id) == [1, 2]
