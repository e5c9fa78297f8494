"""GET /jobs/{id}, /pipelines, /health, the OpenAPI document, and routes that do not exist."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests import images
from tests.helpers.api import assert_error, submit
from tests.system import wait_for_job

JOB_KEYS = {
    "job_id",
    "pipeline_id",
    "pipeline_version",
    "status",
    "message",
    "result",
    "error",
    "current_step",
    "steps",
    "created_at",
    "started_at",
    "finished_at",
}
STEP_KEYS = {"position", "type", "status", "attempts", "duration_ms", "error", "output"}
CAR_STEP_TYPES = ["image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1"]
ERROR_REF = "#/components/schemas/ErrorResponse"


def test_get_job_unknown_id_is_404_job_not_found(api: httpx.Client) -> None:
    # Given
    job_id = uuid.uuid4()

    # When
    response = api.get(f"/jobs/{job_id}")

    # Then
    error = assert_error(response, 404, "job_not_found")
    assert str(job_id) in error["message"]


@pytest.mark.parametrize("job_id", ["not-a-uuid", "123", f"{uuid.uuid4()}0", "%20"])
def test_get_job_malformed_id_is_422_invalid_request(api: httpx.Client, job_id: str) -> None:
    # When
    response = api.get(f"/jobs/{job_id}")

    # Then
    error = assert_error(response, 422, "invalid_request")
    assert "job_id" in error["message"]


def test_get_job_finished_body_has_exactly_the_documented_keys(api: httpx.Client) -> None:
    # Given: a finished job
    accepted = submit(api, images.jpeg(320, 240, seed=11))
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    wait_for_job(api, job_id)

    # When
    response = api.get(f"/jobs/{job_id}")

    # Then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == JOB_KEYS
    assert body["job_id"] == job_id
    assert body["pipeline_id"] == 1
    assert body["pipeline_version"] >= 1
    assert body["status"] in ("succeeded", "failed")
    assert body["finished_at"] is not None
    assert [set(step) for step in body["steps"]] == [STEP_KEYS] * 3
    assert [step["type"] for step in body["steps"]] == CAR_STEP_TYPES


def test_list_pipelines_includes_the_car_detection_pipeline(api: httpx.Client) -> None:
    # When
    response = api.get("/pipelines")

    # Then
    assert response.status_code == 200
    pipelines = {p["id"]: p for p in response.json()}
    car = pipelines[1]
    assert set(car) == {
        "id",
        "name",
        "description",
        "config",
        "version",
        "created_at",
        "archived_at",
    }
    assert car["archived_at"] is None
    assert car["name"] == "car-detection"
    assert car["config"]["datatype"] == "CarDetection"
    assert [step["type"] for step in car["config"]["steps"]] == CAR_STEP_TYPES


def test_get_pipeline_answers_the_same_pipeline_as_the_list(api: httpx.Client) -> None:
    # Given
    listed = {p["id"]: p for p in api.get("/pipelines").json()}

    # When
    response = api.get("/pipelines/1")

    # Then
    assert response.status_code == 200
    assert response.json() == listed[1]


def test_get_pipeline_unknown_id_is_404_pipeline_not_found(api: httpx.Client) -> None:
    # When
    response = api.get("/pipelines/999999")

    # Then
    error = assert_error(response, 404, "pipeline_not_found")
    assert "999999" in error["message"]


@pytest.mark.parametrize("pipeline_id", ["0", "-1", "abc", "1.5", str(2**31)])
def test_get_pipeline_invalid_id_is_422_invalid_request(
    api: httpx.Client, pipeline_id: str
) -> None:
    # When
    response = api.get(f"/pipelines/{pipeline_id}")

    # Then
    error = assert_error(response, 422, "invalid_request")
    assert "pipeline_id" in error["message"]


def test_health_reports_database_and_broker_ok(api: httpx.Client) -> None:
    # When
    response = api.get("/health")

    # Then
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_openapi_documents_submit_as_202_with_the_error_model(api: httpx.Client) -> None:
    # When
    response = api.get("/openapi.json")

    # Then
    assert response.status_code == 200
    spec = response.json()
    answers = spec["paths"]["/jobs"]["post"]["responses"]
    accepted = answers["202"]["content"]["application/json"]["schema"]
    assert accepted == {"$ref": "#/components/schemas/JobAccepted"}
    for status in ("404", "415", "422"):
        schema = answers[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": ERROR_REF}, (status, schema)
    error_schema = spec["components"]["schemas"]["ErrorResponse"]
    assert error_schema["required"] == ["error"]


def test_openapi_documents_job_and_pipeline_errors_with_the_error_model(
    api: httpx.Client,
) -> None:
    # When
    paths = api.get("/openapi.json").json()["paths"]

    # Then
    for path in ("/jobs/{job_id}", "/pipelines/{pipeline_id}"):
        answers = paths[path]["get"]["responses"]
        for status in ("404", "422"):
            schema = answers[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (path, status, schema)


def test_docs_page_is_served(api: httpx.Client) -> None:
    # When
    response = api.get("/docs")

    # Then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no-such-route", 404, "not_found"),
        ("GET", "/jobs/extra/segment", 404, "not_found"),
        ("DELETE", "/jobs", 405, "method_not_allowed"),
        ("PATCH", "/pipelines/1", 405, "method_not_allowed"),
        ("PUT", "/pipelines", 405, "method_not_allowed"),
    ],
)
def test_unrouted_request_answers_the_error_shape(
    api: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    # When
    response = api.request(method, path)

    # Then
    assert_error(response, status, code)
