"""POST /jobs?wait=N: the finished job (200) when it ends within N seconds, else 202."""

from __future__ import annotations

import httpx
import pytest

from tests import images
from tests.helpers.api import assert_error, stored_rows, submit, wait_until_idle
from tests.helpers.product import car_config, create_pipeline


def test_a_job_that_finishes_in_time_is_answered_200_with_its_final_state(
    api: httpx.Client,
) -> None:
    # When
    response = submit(api, images.jpeg(320, 240, seed=61), 1, wait=20)

    # Then: the same body GET /jobs/{id} gives, now that it ended
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["message"] == "success"
    assert [step["status"] for step in body["steps"]] == ["succeeded"] * 3
    assert response.headers["location"] == f"/jobs/{body['job_id']}"
    assert api.get(response.headers["location"]).json() == body


def test_a_job_that_fails_in_time_is_answered_200_with_the_reason(api: httpx.Client) -> None:
    pipeline_id = create_pipeline(api, car_config(model_path="/no-such-endpoint"), "wait-fail")

    response = submit(api, images.jpeg(64, 48, seed=62), pipeline_id, wait=20)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"
    assert "HTTP 404" in response.json()["error"]


def test_a_wait_shorter_than_the_model_takes_is_answered_202(api: httpx.Client) -> None:
    # The mock takes 150 ms an answer (MLMOCK_LATENCY_MS), so 50 ms is never enough.
    response = submit(api, images.jpeg(64, 48, seed=63), 1, wait=0.05)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert response.headers["location"] == f"/jobs/{response.json()['job_id']}"


def test_wait_zero_does_not_wait(api: httpx.Client) -> None:
    response = submit(api, images.jpeg(64, 48, seed=64), 1, wait=0)

    assert response.status_code == 202


@pytest.mark.parametrize("wait", ["31", "-1", "nan", "inf", "soon"])
def test_a_wait_out_of_bounds_is_422_and_stores_nothing(api: httpx.Client, wait: str) -> None:
    wait_until_idle()
    before = stored_rows()

    response = submit(api, images.jpeg(64, 48, seed=65), 1, wait=wait)

    error = assert_error(response, 422, "invalid_request")
    assert "wait" in error["message"]
    assert stored_rows() == before
