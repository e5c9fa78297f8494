"""POST /pipelines: a config is validated against the step manifests before anything is stored."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests import images
from tests.conftest import count_rows
from tests.helpers.api import assert_error, submit
from tests.system import wait_for_job

FIT = {"type": "image.fit@v1", "params": {"max_width": 320, "max_height": 200}}
DETECT = {"type": "model.detect_car@v1"}
SAVE = {"type": "storage.save_car_detection@v1"}
CAR = {"datatype": "CarDetection", "steps": [FIT, DETECT, SAVE]}


def webhook(url: str) -> dict[str, Any]:
    return {"type": "notify.webhook@v1", "params": {"url": url}}


def unique(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_create_pipeline_answers_201_with_canonical_config_and_location(
    api: httpx.Client,
) -> None:
    # Given
    name = unique("car-320")

    # When
    response = api.post(
        "/pipelines", json={"name": name, "description": "Smaller fit", "config": CAR}
    )

    # Then: defaults filled in, stored, and found where Location says
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == name
    assert body["description"] == "Smaller fit"
    assert body["config"] == {
        "datatype": "CarDetection",
        "steps": [
            {
                "type": "image.fit@v1",
                "params": {
                    "max_width": 320,
                    "max_height": 200,
                    "quality": 90,
                    "resample": "lanczos",
                },
            },
            {"type": "model.detect_car@v1", "params": {"path": "/process_image/"}},
            {"type": "storage.save_car_detection@v1", "params": {}},
        ],
    }
    assert response.headers["location"] == f"/pipelines/{body['id']}"
    assert api.get(response.headers["location"]).json() == body


def test_created_pipeline_runs_jobs(api: httpx.Client) -> None:
    # Given: a pipeline in the earlier format, with the earlier step names
    legacy = {
        "datatype": "CarDetection",
        "steps": {"1": "ImageHandler", "2": "MachineLearningModelRequest", "3": "SaveCarDetection"},
    }
    created = api.post("/pipelines", json={"name": unique("legacy"), "config": legacy})
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]
    assert [s["type"] for s in created.json()["config"]["steps"]] == [
        "image.fit@v1",
        "model.detect_car@v1",
        "storage.save_car_detection@v1",
    ]

    # When
    job = submit(api, images.jpeg(200, 100, seed=4), pipeline_id=pipeline_id)

    # Then
    assert job.status_code == 202, job.text
    assert wait_for_job(api, job.json()["job_id"])["status"] == "succeeded"


def test_duplicate_name_is_409_and_stores_nothing(api: httpx.Client) -> None:
    # Given
    name = unique("dup")
    assert api.post("/pipelines", json={"name": name, "config": CAR}).status_code == 201
    before = count_rows("pipelines")

    # When
    response = api.post("/pipelines", json={"name": name, "config": CAR})

    # Then
    error = assert_error(response, 409, "pipeline_name_taken")
    assert name in error["message"]
    assert count_rows("pipelines") == before


def config_case(case_id: str, config: Any, position: int | None, mentions: str) -> Any:
    return pytest.param(config, position, mentions, id=case_id)


INVALID_CONFIGS = [
    config_case(
        "unknown-step-type",
        {"datatype": "CarDetection", "steps": [FIT, {"type": "image.sharpen@v9"}]},
        2,
        "unknown step type",
    ),
    config_case(
        "unknown-datatype", {"datatype": "Banana", "steps": [FIT]}, None, "unknown data type"
    ),
    config_case(
        "bad-parameter-value",
        {"datatype": "ImageData", "steps": [{"type": "image.fit@v1", "params": {"quality": 0}}]},
        1,
        "quality",
    ),
    config_case(
        "unknown-parameter",
        {"datatype": "ImageData", "steps": [{"type": "image.fit@v1", "params": {"blur": 3}}]},
        1,
        "blur",
    ),
    config_case(
        "parameter-of-wrong-type",
        {"datatype": "CarDetection", "steps": [FIT, {"type": DETECT["type"], "params": []}]},
        2,
        "params",
    ),
    config_case(
        "step-does-not-accept-datatype",
        {"datatype": "ImageData", "steps": [FIT, DETECT]},
        2,
        "accepts CarDetection",
    ),
    config_case("missing-step-type", {"datatype": "CarDetection", "steps": [{}]}, 1, "type"),
    config_case("empty-step-list", {"datatype": "CarDetection", "steps": []}, None, "steps"),
    config_case(
        "too-many-steps", {"datatype": "ImageData", "steps": [FIT] * 51}, None, "at most 50"
    ),
    config_case("missing-steps", {"datatype": "CarDetection"}, None, "steps"),
    config_case("missing-datatype", {"steps": [FIT]}, None, "datatype"),
    config_case("unknown-top-level-key", {**CAR, "retries": 3}, None, "retries"),
    config_case(
        "legacy-keys-not-numbers",
        {"datatype": "CarDetection", "steps": {"a": "ImageHandler"}},
        None,
        "numbers",
    ),
    config_case(
        "legacy-steps-not-json", {"datatype": "CarDetection", "steps": "{nope"}, None, "JSON"
    ),
    config_case(
        "webhook-to-the-metadata-address",
        {"datatype": "CarDetection", "steps": [FIT, webhook("http://169.254.169.254/latest/")]},
        2,
        "169.254.169.254 is a link-local address",
    ),
    config_case(
        "webhook-to-loopback-written-as-a-number",
        {"datatype": "CarDetection", "steps": [FIT, DETECT, webhook("http://2130706433:6379/")]},
        3,
        "127.0.0.1 is a loopback address",
    ),
    config_case(
        "model-path-naming-another-host",
        {
            "datatype": "CarDetection",
            "steps": [{"type": DETECT["type"], "params": {"path": "//e/"}}],
        },
        1,
        "parameter path",
    ),
]


@pytest.mark.parametrize(("config", "position", "mentions"), INVALID_CONFIGS)
def test_invalid_config_is_422_naming_the_step_and_stores_nothing(
    api: httpx.Client, config: Any, position: int | None, mentions: str
) -> None:
    # Given
    before = count_rows("pipelines")

    # When
    response = api.post("/pipelines", json={"name": unique(), "config": config})

    # Then: every issue in `details`, with the 1-based step position
    error = assert_error(response, 422, "invalid_pipeline_config")
    assert mentions in error["message"], error
    assert error["details"], error
    assert {"position", "step_type", "message"} <= set(error["details"][0])
    positions = {issue["position"] for issue in error["details"]}
    assert position in positions, error
    if position is not None:
        assert f"step {position}" in error["message"]
    assert count_rows("pipelines") == before


def test_every_issue_of_a_config_is_reported_at_once(api: httpx.Client) -> None:
    # Given: three steps, two of them wrong
    config = {
        "datatype": "CarDetection",
        "steps": [{"type": "nope@v1"}, FIT, {"type": "image.fit@v1", "params": {"max_width": 1}}],
    }

    # When
    response = api.post("/pipelines", json={"name": unique(), "config": config})

    # Then
    error = assert_error(response, 422, "invalid_pipeline_config")
    assert [(i["position"], i["step_type"]) for i in error["details"]] == [
        (1, "nope@v1"),
        (3, "image.fit@v1"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"config": CAR},
        {"name": "", "config": CAR},
        {"name": " padded ", "config": CAR},
        {"name": "nul\u0000byte", "config": CAR},
        {"name": "x" * 201, "config": CAR},
        {"name": "ok", "config": CAR, "owner": "me"},
        {"name": "ok", "config": "not an object"},
        {"name": "ok", "description": "nul\u0000", "config": CAR},
        {"name": "ok"},
        [CAR],
    ],
    ids=[
        "no-name",
        "empty-name",
        "padded-name",
        "nul-in-name",
        "long-name",
        "unknown-field",
        "config-not-object",
        "nul-in-description",
        "no-config",
        "not-an-object",
    ],
)
def test_malformed_body_is_422_invalid_request(api: httpx.Client, body: Any) -> None:
    before = count_rows("pipelines")

    response = api.post("/pipelines", json=body)

    assert_error(response, 422, "invalid_request")
    assert count_rows("pipelines") == before
