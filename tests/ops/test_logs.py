"""One job's story in every service's log: its id on a line of the API, the worker and the mock;
Flower's own lines in the same format."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_ENV
from tests.ops.helpers import run_jobs, start_flower
from tests.system import System, make_env, wait_until


def test_a_job_id_is_on_lines_of_every_service(api: httpx.Client, system: System) -> None:
    job = run_jobs(api, 1, 1)[0]
    job_id = str(job["job_id"])
    api.get(f"/jobs/{job_id}")

    lines = {
        name: [line for line in system.log(name).splitlines() if job_id in line]
        for name in ("api", "worker", "mlmock")
    }

    assert job["status"] == "succeeded"
    assert any("handed to the workers" in line for line in lines["api"]), lines["api"]
    # uvicorn's access line of GET /jobs/{id}, in the same format, tagged with the job
    assert any(f"[job={job_id}]" in line and "GET /jobs/" in line for line in lines["api"])
    # One INFO line per step, its own, tagged with the step (the detection's row is stored by
    # the model call's task: adjacent steps on one queue); Celery's "received" and "succeeded
    # in" lines and httpx's request line say nothing more, and are left out at INFO.
    steps = ("image.fit@v1", "model.detect_car@v1", "storage.save_car_detection@v1")
    for position, step in enumerate(steps, start=1):
        tag = f"[job={job_id} step={position}:{step}]"
        tagged = [line for line in lines["worker"] if tag in line]
        assert len(tagged) == 1, (tag, tagged)
        assert " done in " in tagged[0], tagged
    assert any(
        f"[job={job_id}]" in line and "detection for job" in line for line in lines["mlmock"]
    )


@pytest.mark.system  # Flower connects to the broker
def test_flower_logs_json_lines_under_log_format_json(tmp_path: Path) -> None:
    # Given: Flower alone on the test broker, as compose runs it (LOG_FORMAT=json)
    env = make_env({**TEST_ENV, "LOG_FORMAT": "json", "FLOWER_BASIC_AUTH": "ops:flower-logs"})
    flower = System(env=env, logs=tmp_path)
    try:
        url = start_flower(flower)
        # When: it serves a page and is stopped
        assert httpx.get(f"{url}/workers", auth=("ops", "flower-logs"), timeout=10).is_success
        # (the page is a use of Flower: it says so, and asks the workers for task events)
        wait_until(lambda: "Flower in use" in flower.log("flower"), 10, "Flower's line on use")
    finally:
        flower.stop()

    # Then: every line it printed is one of our JSON objects, its banner included
    lines = [line for line in flower.log("flower").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries), lines
    assert any(entry["message"].startswith("Visit me at") for entry in entries), lines
    assert any("shutting down" in entry["message"] for entry in entries), lines
    assert any(entry["logger"] == "worker.flower" for entry in entries), lines
