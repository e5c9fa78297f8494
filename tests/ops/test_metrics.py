"""Prometheus metrics of the API and the worker move as jobs run."""

from __future__ import annotations

import uuid

import httpx

from common.db import session_scope
from common.repositories import PipelineRepository
from tests import images
from tests.conftest import QUEUE, WORKER_METRICS_PORT
from tests.helpers.api import submit
from tests.helpers.product import car_config, create_pipeline, side_api
from tests.ops.helpers import CAR_STEPS, has, run_jobs, scrape, value, wait_idle
from tests.system import System, wait_for_job

JOBS = 3
WORKER_METRICS = f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics"


def test_api_metrics_count_submitted_and_finished_jobs(api: httpx.Client) -> None:
    pipeline = create_pipeline(api, car_config(), prefix="metrics")
    label = str(pipeline)
    before = scrape(f"{api.base_url}/metrics")

    ended = run_jobs(api, pipeline, JOBS)
    after = scrape(f"{api.base_url}/metrics")

    assert {job["status"] for job in ended} == {"succeeded"}

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("pipeline_jobs_submitted_total", pipeline=label, kind="new") == JOBS
    assert moved("pipeline_submit_duration_seconds_count", route="/jobs", status="202") == JOBS
    assert moved("pipeline_submit_duration_seconds_sum", route="/jobs", status="202") > 0
    assert value(after, "pipeline_jobs", pipeline=label, status="succeeded") == JOBS
    assert value(after, "pipeline_jobs_finished_total", pipeline=label, outcome="succeeded") == JOBS
    assert not has(after, "pipeline_jobs_finished_total", pipeline=label, outcome="failed")
    assert value(after, "pipeline_database_up") == 1
    assert value(after, "pipeline_broker_up") == 1
    assert has(after, "pipeline_queue_depth", queue=QUEUE)


def test_worker_metrics_time_every_step_of_every_job(api: httpx.Client, system: System) -> None:
    pipeline = create_pipeline(api, car_config(), prefix="metrics")
    wait_idle()
    before = scrape(WORKER_METRICS)

    run_jobs(api, pipeline, JOBS)
    after = scrape(WORKER_METRICS)

    for step in CAR_STEPS:
        labels = {"step": step, "outcome": "succeeded"}
        count = "pipeline_step_duration_seconds_count"
        assert value(after, count, **labels) - value(before, count, **labels) == JOBS, step
        inf = {**labels, "le": "+Inf"}
        bucket = "pipeline_step_duration_seconds_bucket"
        assert value(after, bucket, **inf) - value(before, bucket, **inf) == JOBS, step
    # The model step waits for the mock's 150 ms on each job.
    detect = {"step": "model.detect_car@v1", "outcome": "succeeded"}
    took = value(after, "pipeline_step_duration_seconds_sum", **detect) - value(
        before, "pipeline_step_duration_seconds_sum", **detect
    )
    assert took >= JOBS * 0.15


def test_metrics_need_no_api_key(system: System) -> None:
    with side_api(system.logs / "keyed", API_KEYS="a-key-for-metrics") as keyed:
        metrics = keyed.get("/metrics")
        jobs = keyed.get("/jobs")

    assert metrics.status_code == 200
    assert "pipeline_queue_depth" in metrics.text
    assert jobs.status_code == 401


def test_a_retried_job_counts_as_a_retry_even_if_no_step_of_it_had_started(
    api: httpx.Client,
) -> None:
    # A stored config that no longer validates: the job fails before any step starts.
    with session_scope() as session:
        pipeline = (
            PipelineRepository(session)
            .add(
                name=f"metrics-stale-{uuid.uuid4().hex[:6]}",
                description="a step type this code does not know",
                config={"datatype": "CarDetection", "steps": [{"type": "image.sharpen@v9"}]},
            )
            .id
        )
    label = str(pipeline)
    job_id = submit(api, images.jpeg(seed=31), pipeline_id=pipeline).json()["job_id"]
    assert wait_for_job(api, job_id)["status"] == "failed"
    before = scrape(f"{api.base_url}/metrics")

    assert api.post(f"/jobs/{job_id}/retry").status_code == 202
    assert wait_for_job(api, job_id)["status"] == "failed"
    after = scrape(f"{api.base_url}/metrics")

    assert value(before, "pipeline_jobs_submitted_total", pipeline=label, kind="new") == 1
    assert value(after, "pipeline_jobs_submitted_total", pipeline=label, kind="new") == 1
    assert value(after, "pipeline_jobs_submitted_total", pipeline=label, kind="retry") == 1
