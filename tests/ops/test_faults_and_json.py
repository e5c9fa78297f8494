"""A cluster of our own: the model always failing, logs as JSON lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.product import car_config, create_pipeline
from tests.ops.helpers import (
    WORKER,
    Cluster,
    cluster,
    json_lines,
    run_jobs,
    scrape,
    value,
)

pytestmark = pytest.mark.system

JOBS = 2


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Every model call answers 503; a step is tried twice, then its job fails."""
    with cluster(
        tmp_path_factory.mktemp("ops-failing"),
        MLMOCK_FAULT_RATE="1",
        MLMOCK_FAULTS="error",
        STEP_MAX_RETRIES="1",
        LOG_FORMAT="json",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def failed_jobs(failing: Cluster) -> list[dict[str, object]]:
    pipeline = create_pipeline(failing.api, car_config(), prefix="failing")
    return run_jobs(failing.api, pipeline, JOBS)


def test_a_failing_model_counts_retries_by_cause(
    failing: Cluster, failed_jobs: list[dict[str, object]]
) -> None:
    metrics = scrape(failing.worker_metrics_url)
    api_metrics = scrape(f"{failing.api_url}/metrics")
    pipeline = str(failed_jobs[0]["pipeline_id"])

    assert [job["status"] for job in failed_jobs] == ["failed"] * JOBS
    detect = "model.detect_car@v1"
    retries = "pipeline_task_retries_total"
    assert value(metrics, retries, step=detect, cause="transient_step_error") == JOBS
    assert value(metrics, retries, step=detect, cause="database_unavailable") == 0
    count = "pipeline_step_duration_seconds_count"
    assert value(metrics, count, step=detect, outcome="retried") == JOBS
    assert value(metrics, count, step=detect, outcome="failed") == JOBS
    assert value(metrics, count, step="image.fit@v1", outcome="succeeded") == JOBS
    assert value(metrics, count, step="storage.save_car_detection@v1", outcome="succeeded") == 0
    finished = "pipeline_jobs_finished_total"
    assert value(api_metrics, finished, pipeline=pipeline, outcome="failed") == JOBS


def test_json_logs_carry_the_job_id_in_every_service(
    failing: Cluster, failed_jobs: list[dict[str, object]]
) -> None:
    job_id = str(failed_jobs[0]["job_id"])
    failing.api.get(f"/jobs/{job_id}")
    logs = {name: failing.system.log(name) for name in ("api", WORKER, "mlmock")}

    for name, text in logs.items():
        mentioning = [line for line in text.splitlines() if job_id in line]
        entries = json_lines(text)
        # every line about the job is a JSON object with the job's id as a field
        assert mentioning, name
        assert all(line.startswith("{") for line in mentioning), (name, mentioning)
        assert {"time", "level", "logger", "message", "job_id"} <= set(entries[-1]), name
        assert any(entry["job_id"] == job_id for entry in entries), name
    worker = [entry for entry in json_lines(logs[WORKER]) if entry["job_id"] == job_id]
    detect = [entry for entry in worker if entry["step"] == "model.detect_car@v1"]
    assert detect
    assert all(entry["position"] == 2 for entry in detect)
    # the step's retry line, tagged with the step like every line of its task
    assert any("attempt 2 in" in str(entry["message"]) for entry in detect)
    assert any(
        entry["level"] == "WARNING" and "failed" in str(entry["message"]) for entry in worker
    )
    access = [entry for entry in json_lines(logs["api"]) if entry["logger"] == "uvicorn.access"]
    assert any(entry["job_id"] == job_id for entry in access)
    mock = [entry for entry in json_lines(logs["mlmock"]) if entry["job_id"] == job_id]
    assert len(mock) == 2  # two attempts, each logged with the job id the worker sent


def test_a_second_worker_on_a_taken_metrics_port_runs_without_an_endpoint(
    failing: Cluster,
) -> None:
    failing.system.start_worker("worker2", concurrency=1)
    try:
        log = failing.system.log("worker2")
        served = scrape(failing.worker_metrics_url)
    finally:
        failing.system.stop("worker2")

    assert "cannot listen on" in log
    assert f":{failing.worker_metrics_port}" in log
    assert "pipeline_step_duration_seconds_count" in {name for name, _ in served}


def test_a_restarted_worker_starts_its_metrics_from_zero(
    failing: Cluster, failed_jobs: list[dict[str, object]]
) -> None:
    folder = Path(failing.system.env["DATA_DIR"]) / "prometheus"
    folder /= f"worker-{failing.worker_metrics_port}"
    retries = ("pipeline_task_retries_total", "model.detect_car@v1")
    before = scrape(failing.worker_metrics_url)
    written = sorted(path.name for path in folder.glob("*.db"))

    failing.system.stop(WORKER)
    failing.system.start_worker(WORKER)
    after = scrape(failing.worker_metrics_url)

    # the pool processes wrote their values to this worker's folder...
    assert written
    assert all(name.startswith(("counter_", "histogram_")) for name in written)
    assert value(before, retries[0], step=retries[1], cause="transient_step_error") == JOBS
    # ...which the next worker on the port empties before it counts anything
    assert list(folder.glob("*.db")) == []
    assert value(after, retries[0], step=retries[1], cause="transient_step_error") == 0
