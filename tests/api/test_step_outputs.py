"""Each step's output over HTTP: declared as JSON Schema in GET /steps, reported on the job's
steps in GET /jobs/{id}, and matched by GET /jobs?output=..."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image, ImageStat

from tests import images
from tests.conftest import API_PORT
from tests.helpers.api import assert_error, submit_ok
from tests.helpers.product import create_pipeline, image_of
from tests.system import System, wait_for_job

# With MLMOCK_SEED set, the mock answers each of these images the same way every run: some
# with a box, some with none (asserted below, so that a change of seed shows up).
SEEDS = range(40, 46)
THRESHOLD = 0.5
STATS_CONFIG = {
    "datatype": "ImageStats",
    "steps": [
        {"type": "image.fit@v1", "params": {"max_width": 320, "max_height": 320}},
        {"type": "image.stats@v1"},
    ],
}
CAR_CONFIG = {
    "datatype": "CarDetection",
    "steps": [
        {"type": "image.fit@v1"},
        {"type": "model.detect_car@v1"},
        {"type": "detections.min_confidence@v1", "params": {"threshold": THRESHOLD}},
        {"type": "storage.save_car_detection@v1"},
    ],
}


@dataclass(frozen=True)
class Ran:
    """Jobs of the module's own pipelines, ended, as GET /jobs/{id} answers."""

    stats_pipeline: int
    stats_job: dict[str, Any]
    car_pipeline: int
    car_jobs: list[dict[str, Any]]


@pytest.fixture(scope="module")
def ran(system: System) -> Ran:
    with httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}", timeout=60) as api:
        stats = create_pipeline(api, STATS_CONFIG, "stats")
        stats_id = submit_ok(api, images.jpeg(960, 720, seed=7), stats)
        car = create_pipeline(api, CAR_CONFIG, "verdicts")
        car_ids = [submit_ok(api, images.jpeg(960, 720, seed=s), car) for s in SEEDS]
        stats_job = wait_for_job(api, stats_id)
        car_jobs = [wait_for_job(api, job_id) for job_id in car_ids]
    assert stats_job["status"] == "succeeded", stats_job
    assert [job["status"] for job in car_jobs] == ["succeeded"] * len(car_jobs), car_jobs
    return Ran(stats, stats_job, car, car_jobs)


def output_of(job: dict[str, Any], step_type: str) -> Any:
    (step,) = [step for step in job["steps"] if step["type"] == step_type]
    assert step["status"] == "succeeded", step
    return step["output"]


def listed_ids(api: httpx.Client, **params: Any) -> set[str]:
    response = api.get("/jobs", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return {str(job["job_id"]) for job in response.json()["items"]}


def test_steps_declare_their_output_as_json_schema(api: httpx.Client) -> None:
    response = api.get("/steps")

    assert response.status_code == 200, response.text
    outputs = {step["type"]: step["output"] for step in response.json()["steps"]}
    stats = outputs["image.stats@v1"]
    assert stats["type"] == "object"
    assert set(stats["required"]) == {"width", "height", "mean_brightness", "brightness_stddev"}
    assert stats["properties"]["width"]["type"] == "integer"
    model = outputs["model.detect_car@v1"]["properties"]["detection"]
    assert {"$ref": "#/$defs/Detection"} in model["anyOf"]
    assert {"type": "null"} in model["anyOf"]
    verdict = outputs["detections.min_confidence@v1"]["properties"]["verdict"]
    assert verdict["enum"] == ["kept", "dropped", "no_detection"]
    webhook = outputs["notify.webhook@v1"]["properties"]
    assert webhook["status"]["enum"] == ["delivered", "failed", "not_sent"]
    assert {"http_status", "attempts", "error"} <= set(webhook)
    # A step that reports nothing says so.
    for step_type in ("image.fit@v1", "storage.save_car_detection@v1", "image.annotate@v1"):
        assert outputs[step_type]["type"] == "null"


def test_the_stats_figures_are_the_stats_steps_output(api: httpx.Client, ran: Ran) -> None:
    job = ran.stats_job

    measured = output_of(job, "image.stats@v1")

    assert output_of(job, "image.fit@v1") is None
    assert (measured["width"], measured["height"]) == (320, 240)
    processed = image_of(api, str(job["job_id"]), "processed")
    with Image.open(io.BytesIO(processed.content)) as img:
        luma = ImageStat.Stat(img.convert("L"))
    assert measured["mean_brightness"] == pytest.approx(luma.mean[0], abs=0.01)
    assert measured["brightness_stddev"] == pytest.approx(luma.stddev[0], abs=0.01)
    # The earlier single result stays as it was.
    assert (job["result"], job["message"]) == (None, "success")


def test_the_models_answer_and_the_filters_verdict_are_each_steps_output(ran: Ran) -> None:
    verdicts = []
    for job in ran.car_jobs:
        detection = output_of(job, "model.detect_car@v1")["detection"]
        verdict = output_of(job, "detections.min_confidence@v1")
        assert verdict["threshold"] == THRESHOLD
        if detection is None:
            assert (verdict["verdict"], verdict["conf"], job["result"]) == (
                "no_detection",
                None,
                None,
            )
        elif detection["conf"] >= THRESHOLD:
            assert (verdict["verdict"], verdict["conf"]) == ("kept", detection["conf"])
            assert job["result"] == detection
        else:
            assert (verdict["verdict"], verdict["conf"]) == ("dropped", detection["conf"])
            # The model's own answer stays visible, though the job's result says no car.
            assert job["result"] is None
        verdicts.append(verdict["verdict"])
        assert output_of(job, "storage.save_car_detection@v1") is None
    assert "no_detection" in verdicts
    assert {"kept", "dropped"} & set(verdicts)


def test_jobs_are_listed_by_a_steps_output(api: httpx.Client, ran: Ran) -> None:
    stats_id = str(ran.stats_job["job_id"])
    by_verdict: dict[str, set[str]] = {}
    for job in ran.car_jobs:
        verdict = output_of(job, "detections.min_confidence@v1")["verdict"]
        by_verdict.setdefault(verdict, set()).add(str(job["job_id"]))
    mine = {"pipeline_id": ran.car_pipeline}

    assert stats_id in listed_ids(api, output="image.stats@v1:width=320")
    assert stats_id not in listed_ids(api, output="image.stats@v1:width=321")
    for verdict in ("kept", "dropped", "no_detection"):
        found = listed_ids(api, output=f"detections.min_confidence@v1:verdict={verdict}", **mine)
        assert found == by_verdict.get(verdict, set())
    no_conf = listed_ids(api, output="detections.min_confidence@v1:conf=null", **mine)
    assert no_conf == by_verdict["no_detection"]
    # Two filters: both must match.
    both = listed_ids(
        api,
        output=["image.stats@v1:width=320", "image.stats@v1:height=241"],
    )
    assert stats_id not in both
    # The detected filter keeps working beside them.
    detected = {str(job["job_id"]) for job in ran.car_jobs if job["result"] is not None}
    assert listed_ids(api, detected="true", **mine) == detected == by_verdict.get("kept", set())


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("image.stats@v1", "write it as <step type>:<field>=<value>"),
        ("image.stats@v1:width", "write it as"),
        ("no.such_step@v1:x=1", "there is no step type 'no.such_step@v1'"),
        ("image.fit@v1:width=1", "image.fit@v1 reports nothing to filter on"),
        ("image.stats@v1:depth=1", "reports no 'depth'; it reports brightness_stddev, height"),
        ("image.stats@v1:width=wide", "width: Input should be a valid integer"),
        ("image.stats@v1:width=null", "width is never null"),
        ("model.detect_car@v1:detection=null", "detection is not a single value"),
        ("notify.webhook@v1:status=lost", "status: Input should be 'delivered', 'failed' or"),
        ("image.stats@v1:width=" + "9" * 300, "at most 300 characters"),
    ],
)
def test_a_bad_output_filter_is_422_saying_what_is_wrong(
    api: httpx.Client, value: str, says: str
) -> None:
    error = assert_error(api.get("/jobs", params={"output": value}), 422, "invalid_output_filter")

    assert says in error["message"]
    assert [detail["field"] for detail in error["details"]] == ["query.output"]


def test_more_than_five_output_filters_are_refused(api: httpx.Client) -> None:
    response = api.get("/jobs", params={"output": ["image.stats@v1:width=1"] * 6})

    assert "at most 5" in assert_error(response, 422, "invalid_output_filter")["message"]
